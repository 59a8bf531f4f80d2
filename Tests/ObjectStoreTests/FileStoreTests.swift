import Foundation
import ObjectStore
import ServiceTestSupport
import TestSupport
import Testing

struct FileStoreTests {
    @Test func putGetOverwriteAndStayInside() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-store-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try FileStore(root: root)
        try store.put("job1/img/a.npz", bytes: [1, 2, 3], contentType: "application/octet-stream")
        #expect(try store.get("job1/img/a.npz") == [1, 2, 3])
        try store.put("job1/img/a.npz", bytes: [9], contentType: "application/octet-stream")
        #expect(try store.get("job1/img/a.npz") == [9], "a retry overwrites")
        #expect(try store.get("job1/missing") == nil)
        // Hostile keys stay inside the root.
        try store.put("../../etc/it's; DROP TABLE x;--.jpg", bytes: [7], contentType: "image/jpeg")
        #expect(sanitizedKey("../../etc/it's; DROP TABLE x;--.jpg") == "_/_/etc/it_s__DROP_TABLE_x_--.jpg")
        #expect(FileManager.default.fileExists(atPath: root + "/_/_/etc/it_s__DROP_TABLE_x_--.jpg"))
        // No temporary files are left behind.
        let leftovers = FileManager.default.enumerator(atPath: root)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
        #expect(store.url(for: "job1/img/a.npz") == "file://" + root + "/job1/img/a.npz")
    }

    /// A file where the key's folder should be: the put fails for any user, root included, and names the path.
    @Test func anUnwritableFolderIsNamed() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-store-blocked-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try FileStore(root: root)
        try store.put("blocker", bytes: [1], contentType: "text/plain")
        #expect {
            try store.put("blocker/x", bytes: [1], contentType: "text/plain")
        } throws: { "\($0)".contains(root + "/blocker/x") }
        #expect(try store.get("blocker") == [1], "the other object is untouched")
    }
}
