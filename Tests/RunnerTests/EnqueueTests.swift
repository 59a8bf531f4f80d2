import Detection
import Files
import Foundation
import Postgres
import Runner
import ServiceTestSupport
import TestSupport
import Testing

struct EnqueueTests {
    /// A tree with nested folders, non-images, a symbolic-link loop and a hostile file name.
    static func makeTree() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-enqueue-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        let manager = FileManager.default
        for folder in ["b/deep", "a", "c"] { try manager.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true) }
        for file in ["b/deep/z.PNG", "b/x.jpg", "a/2.jpeg", "a/10.png", "a/notes.txt", "c/it's; DROP TABLE x;--.jpg", "top.png"] {
            try Data([0]).write(to: URL(fileURLWithPath: root + "/" + file))
        }
        try manager.createSymbolicLink(atPath: root + "/b/deep/loop", withDestinationPath: root + "/b")
        return root
    }

    @Test func walksDeterministicallyAndReportsLoops() throws {
        let root = try Self.makeTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let walk = try Enqueuer.walk(root)
        #expect(walk.images == ["a/10.png", "a/2.jpeg", "b/deep/z.PNG", "b/x.jpg", "c/it's; DROP TABLE x;--.jpg", "top.png"])
        #expect(walk.problems.count == 1 && walk.problems[0].contains("loop"))
        #expect(throws: RunnerError.self) { try Enqueuer.walk(root + "/top.png") }
    }

    /// FIFOs named like images, links that leave the dataset and names that are not UTF-8: the walk reports the first
    /// two without opening them, walks the third as bytes, and the worker's fetch refuses what leaves the root.
    @Test func walkReportsWhatItCannotTakeAndKeepsRawNames() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("odam-walk-\(getpid())").path
        try? FileManager.default.removeItem(atPath: base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let root = base + "/data"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: root + "/ok.png"))
        try Data("secret".utf8).write(to: URL(fileURLWithPath: base + "/credentials"))
        #expect(mkfifo(root + "/fifo.png", 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: root + "/innocent.png", withDestinationPath: base + "/credentials")
        try FileManager.default.createSymbolicLink(atPath: root + "/alias.png", withDestinationPath: root + "/ok.png")
        let rawName: [UInt8] = Array((root + "/f").utf8) + [0xFF] + Array(".png".utf8)
        let descriptor = RawPath.withCString(RawPath.string(rawName)) { open($0, O_WRONLY | O_CREAT, 0o600) }
        #expect(descriptor >= 0)
        _ = [UInt8](repeating: 7, count: 4).withUnsafeBytes { write(descriptor, $0.baseAddress, 4) }
        close(descriptor)

        let walk = try Enqueuer.walk(root)
        let escaped = RawPath.string(Array("f".utf8) + [0xFF] + Array(".png".utf8))
        #expect(walk.images == ["alias.png", escaped, "ok.png"])
        #expect(walk.problems.count == 2)
        #expect(walk.problems.contains { $0.contains("fifo.png") && $0.contains("FIFO") })
        #expect(walk.problems.contains { $0.contains("innocent.png") && $0.contains("outside") })

        let source = JobResources.ImageSource.folder(root)
        #expect(try source.fetch(escaped) == [7, 7, 7, 7])
        #expect(try source.fetch("alias.png") == [1, 2, 3])
        #expect(throws: FileReadError.self) { try source.fetch("innocent.png") }
        #expect(throws: FileReadError.self) { try source.fetch("fifo.png") }
    }

    @Test func enqueueRecordsJobShardsAndImagesAndNotifies() throws {
        let db = try freshTestDatabase("enqueue_test")
        let listener = try PostgresConnection(try testPostgres().connectionString(database: "enqueue_test"))
        try listener.listen(JobStore.workChannel)
        let images = (0..<23).map { "img\($0).png" } + ["it's; DROP TABLE images;--.jpg"]
        let job = try JobStore(db).enqueue(NewJob(name: "test", spec: JobSpec(), source: "/data", images: images, shardSize: 5))
        #expect(try db.query("SELECT image_count, shard_count FROM jobs WHERE id = $1", [String(job)]).rows == [["24", "5"]])
        let perShard = try db.query(
            "SELECT shard_id, count(*), min(position), max(position) FROM images WHERE job_id = $1 GROUP BY shard_id ORDER BY shard_id",
            [String(job)]
        ).rows
        #expect(perShard.map { $0[1]! } == ["5", "5", "5", "5", "4"])
        #expect(perShard.map { $0[2]! } == ["0", "5", "10", "15", "20"])
        #expect(try db.query("SELECT path FROM images WHERE position = 23").rows == [["it's; DROP TABLE images;--.jpg"]])
        #expect(try db.query("SELECT count(*) FROM shards WHERE state = 'available'").rows == [["5"]])
        let note = try listener.waitForNotification(timeout: 5)
        #expect(note?.channel == JobStore.workChannel && note?.payload == String(job))
        let progress = try db.query("SELECT shards_waiting, images_done FROM job_progress WHERE job_id = $1", [String(job)]).rows
        #expect(progress == [["5", "0"]])
    }

    /// A job's categories: COCO's 80 named classes of a 91-label head (no background, no "N/A" gap), recorded once
    /// however many workers record them; names with quotes stay intact.
    @Test func categoriesRecordTheNamedClassesOnce() throws {
        let db = try freshTestDatabase("categories_test")
        let jobs = JobStore(db)
        let coco = try jobs.enqueue(NewJob(name: "coco", spec: JobSpec(), source: "/d", images: ["a.png"], shardSize: 1))
        let other = try jobs.enqueue(NewJob(name: "other", spec: JobSpec(), source: "/d", images: ["a.png"], shardSize: 1))
        for _ in 0..<2 { try jobs.recordCategories(job: coco, classNames: ClassNames(names: ClassNames.coco)) }
        try jobs.recordCategories(job: other, classNames: ClassNames(names: ["__background__", "it's \"odd\"; --", "N/A", "car"]))
        try jobs.recordCategories(job: other, classNames: ClassNames(names: []))
        let rows = try db.query("SELECT job_id, label, name FROM categories ORDER BY job_id, label").rows
        let cocoRows = rows.filter { $0[0] == String(coco) }
        #expect(cocoRows.count == 80 && cocoRows.first?[1...] == ["1", "person"] && cocoRows.last?[1...] == ["90", "toothbrush"])
        #expect(rows.filter { $0[0] == String(other) }.map { [$0[1]!, $0[2]!] } == [["1", "it's \"odd\"; --"], ["3", "car"]])
    }
}
