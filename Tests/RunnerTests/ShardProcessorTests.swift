import DefaultModel
import Detection
import Digest
import Foundation
import ObjectStore
import Postgres
import Runner
import ServiceTestSupport
import Synthesis
import TestSupport
import Testing
import Vision

/// Enqueue, claim, process and commit a shard with the shipped synthetic-scene FCOS, a real PostgreSQL and a local store; bad files
/// become failed rows and the shard goes on; a fenced-out worker's results never land.
struct ShardProcessorTests {
    @Test func processesAShardAndRecordsEverythingOnce() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-shard-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try SyntheticDataset.write(directory: root + "/data", count: 3, seed: 5, generator: SceneGenerator())
        try Data().write(to: URL(fileURLWithPath: root + "/data/images/empty.png"))
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/data/images/it's; DROP TABLE x;--.png"))
        let db = try freshTestDatabase("shard_processing")
        let jobs = JobStore(db)
        let walk = try Enqueuer.walk(root + "/data/images")
        #expect(walk.images.count == 5)
        let job = try jobs.enqueue(NewJob(name: "t", spec: JobSpec(), source: root + "/data/images", images: walk.images, shardSize: 5))
        let files = try DefaultModel.files(.odamTrain)
        let detector = try ModelSpec.resolve(files.spec).load(weights: files.weights) as! FCOS
        let store = try FileStore(root: root + "/objects")
        let processor = ShardProcessor(
            pipeline: try ImagePipeline(detector: detector), store: store, source: .init(root + "/data/images", store: store))
        let worker = try jobs.registerWorker(host: "test", version: "t", threads: 2)
        let claim = try #require(try jobs.claim(worker: worker).first)
        let results = try processor.process(claim, jobs: jobs)
        #expect(results.imageCount == 5 && results.images.count == 5)
        #expect(try jobs.commit(results, claim: claim, worker: worker))
        // Committing the same claim again: its token no longer holds a running shard, so nothing more commits.
        #expect(try jobs.commit(results, claim: claim, worker: worker) == false, "a completed claim commits nothing more")
        #expect(try jobs.hasCompleted(claim))
        let statuses = try db.query("SELECT status, count(*) FROM image_results GROUP BY status ORDER BY status").rows
        #expect(statuses == [["failed", "2"], ["ok", "3"]])
        let failures = try db.query("SELECT path, error FROM failures WHERE job_id = $1 ORDER BY path", [String(job)]).rows
        #expect(failures.count == 2 && failures.allSatisfy { $0[1]!.contains($0[0]!) }, "each failure names its file")
        // Every good image has its detections and one maps object with the right bytes.
        let objects = try db.query("SELECT key, bytes, sha256 FROM heat_map_objects WHERE kind = 'maps'").rows
        #expect(objects.count == 3)
        for object in objects {
            let bytes = try #require(try store.get(object[0]!))
            #expect(String(bytes.count) == object[1]! && object[2]! == SHA256.hex(bytes))
        }
        #expect(try db.query("SELECT count(*) > 0 FROM detections").rows == [["t"]])
        #expect(try db.query("SELECT state FROM shards").rows == [["completed"]])
        // Every image row has its claim's token and a database time.
        #expect(
            try db.query("SELECT count(*) FROM image_results WHERE lease_token = $1 AND database_ms > 0", [String(claim.token)]).rows == [
                ["5"]
            ])
        // The numbers in SQL equal a direct run of the pipeline on the same image.
        let first = try db.query(
            "SELECT i.path, d.x1, d.score FROM detections d JOIN images i ON i.id = d.image_id WHERE d.rank = 0 ORDER BY i.position LIMIT 1"
        ).rows[0]
        let direct = try ImagePipeline(detector: detector).process(try ImageCodec().decode(contentsOf: root + "/data/images/" + first[0]!))
        #expect(abs(Float(first[1]!)! - direct.records[0].box[0]) < 1e-3 && abs(Float(first[2]!)! - direct.records[0].score) < 1e-5)
    }
}
