import Foundation
import ObjectStore
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

    @Test func aReadOnlyFolderIsNamed() throws {
        guard geteuid() != 0 else { return }  // root writes anywhere; the check below needs an ordinary user
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-store-ro-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try FileStore(root: root)
        chmod(root, 0o500)
        #expect { try store.put("x", bytes: [1], contentType: "text/plain") } throws: { "\($0)".contains(root) }
    }
}
