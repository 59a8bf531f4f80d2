import DefaultModel
import Detection
import Digest
import Foundation
import ObjectStore
import Postgres
import Processes
import Runner
import ServiceTestSupport
import TestSupport
import Testing
import Vision

/// The runner as users run it: `odam enqueue`, a coordinator and worker processes against a real PostgreSQL and a
/// real S3 server (SeaweedFS), with bad files, killed workers, a fenced-out worker and injected faults.
@Suite(.serialized)
struct DistributedRunTests {
    static func s3Environment() throws -> [String: String] {
        let server = try SeaweedServer.shared()
        return ["AWS_ACCESS_KEY_ID": server.accessKey, "AWS_SECRET_ACCESS_KEY": server.secretKey, "AWS_REGION": "us-east-1"]
    }

    /// 60 files: the 7 sample photographs, one of them again as `it's; DROP TABLE x;--.jpg`, 49 synthetic scenes, and
    /// 3 bad files (a truncated JPEG, zero bytes, text named .png).
    @Test func sixtyImagesThreeWorkersEverythingExactlyOnce() throws {
        let cluster = try RunnerCluster(name: "e2e", environment: Self.s3Environment())
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        let folder = cluster.root + "/images"
        try FileManager.default.createDirectory(atPath: folder + "/bad", withIntermediateDirectories: true)
        let rocket = try Data(contentsOf: URL(fileURLWithPath: sampleImagePath("rocket.jpg")))
        try rocket.prefix(rocket.count / 3).write(to: URL(fileURLWithPath: folder + "/bad/truncated.jpg"))
        try Data().write(to: URL(fileURLWithPath: folder + "/bad/empty.png"))
        try Data("just some notes\n".utf8).write(to: URL(fileURLWithPath: folder + "/bad/notes.png"))
        let manager = FileManager.default
        try manager.createDirectory(atPath: folder + "/photos", withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: sampleImagesDirectory) where name.hasSuffix(".png") || name.hasSuffix(".jpg") {
            try manager.copyItem(atPath: sampleImagePath(name), toPath: folder + "/photos/" + name)
        }
        try manager.copyItem(atPath: sampleImagePath("rocket.jpg"), toPath: folder + "/photos/it's; DROP TABLE x;--.jpg")
        try RunnerCluster.synthetic(folder, count: 49, seed: 11)

        let bucket = try SeaweedServer.shared().store(bucket: "odam-e2e")
        try bucket.createBucket()
        try """
        name: e2e
        model:
          spec: fcos_synth_odamtrain
        output:
          store: s3://odam-e2e/runs
          endpoint: \(SeaweedServer.shared().endpoint)
          upload:
            overlays: true
        shard_size: 4
        """.write(toFile: cluster.root + "/job.yaml", atomically: true, encoding: .utf8)
        try cluster.enqueue(folder, arguments: ["--job", cluster.root + "/job.yaml"])
        let db = try cluster.connect()
        #expect(try db.query("SELECT image_count, shard_count FROM jobs").rows == [["60", "15"]])

        let coordinator = try cluster.coordinator()
        let workers = try (1...3).map { try cluster.worker("worker-\($0)") }
        for (index, worker) in workers.enumerated() {
            #expect(RunnerCluster.finish(worker, timeout: 600) == 0, "worker \(index + 1): \(cluster.logText("worker-\(index + 1)"))")
        }
        #expect(RunnerCluster.finish(coordinator, timeout: 30) == 0, "the coordinator exits once the job finished")

        // Every image exactly once: 57 ok, 3 failed, each failure naming its file and cause.
        #expect(
            try db.query("SELECT status, count(*), count(DISTINCT image_id) FROM image_results GROUP BY status ORDER BY status").rows
                == [["failed", "3", "3"], ["ok", "57", "57"]])
        let failures = try db.query("SELECT path, error FROM failures WHERE path NOT LIKE '(shard%' ORDER BY path").rows
        #expect(failures.map { $0[0]! } == ["bad/empty.png", "bad/notes.png", "bad/truncated.jpg"])
        for failure in failures { #expect(failure[1]!.contains(failure[0]!), "\(failure[1]!) names \(failure[0]!)") }
        let shardErrors = try db.query("SELECT DISTINCT error FROM shard_attempts WHERE outcome <> 'completed'").rows
        #expect(
            try db.query("SELECT state, count(*) FROM shards GROUP BY state").rows == [["completed", "15"]], "shard errors: \(shardErrors)")
        #expect(try db.query("SELECT finished_at IS NOT NULL, images_ok, images_failed FROM jobs").rows == [["t", "57", "3"]])
        #expect(try db.query("SELECT count(DISTINCT worker_id) >= 2 FROM shard_attempts WHERE outcome = 'completed'").rows == [["t"]])
        // Timings of every stage are recorded for every good image.
        #expect(
            try db.query(
                """
                SELECT count(*) FROM image_results WHERE status = 'ok' AND fetch_ms >= 0 AND decode_ms > 0 AND forward_ms > 0
                    AND candidate_maps_ms > 0 AND odam_nms_ms >= 0 AND final_maps_ms >= 0 AND encode_ms > 0 AND upload_ms > 0
                    AND database_ms > 0
                """
            ).rows == [["57"]])

        // Every object is in S3 with the bytes its row describes; each good image has maps, detections and overlays.
        let store = try SeaweedServer.shared().store(bucket: "odam-e2e", prefix: "runs/")
        let objects = try db.query("SELECT image_id, key, kind, bytes, sha256 FROM heat_map_objects ORDER BY image_id, key").rows
        #expect(Set(objects.filter { $0[2] == "maps" }.map { $0[0]! }).count == 57)
        #expect(Set(objects.filter { $0[2] == "detections" }.map { $0[0]! }).count == 57)
        let keptCount = Int(try db.query("SELECT count(*) FROM detections").rows[0][0]!)!
        #expect(objects.filter { $0[2] == "overlay" }.count == keptCount, "one overlay per kept detection")
        for object in objects {
            let bytes = try #require(try store.get(object[1]!), "object \(object[1]!) is missing")
            #expect(String(bytes.count) == object[3]! && SHA256.hex(bytes) == object[4]!, "object \(object[1]!) has other bytes")
        }

        // The numbers in SQL equal `odam detect` of the same files, and a direct run of the whole pipeline.
        for path in ["photos/chelsea.png", "synthetic/images/000012.png"] {
            try Self.expectBestDetectionEqualsOdamDetect(db, folder: folder, path: path, scratch: cluster.root)
        }
        let files = try DefaultModel.files(.odamTrain)
        let detector = try ModelSpec.resolve(files.spec).load(weights: files.weights) as! FCOS
        var spec = JobSpec()
        spec.output.upload.overlays = true
        let pipeline = try ImagePipeline(detector: detector, spec: spec)
        for path in ["photos/it's; DROP TABLE x;--.jpg", "photos/chelsea.png", "synthetic/images/000007.png"] {
            let rows = try db.query(
                """
                SELECT d.x1, d.y1, d.x2, d.y2, d.score, d.label, d.energy_in_box FROM detections d JOIN images i ON i.id = d.image_id
                WHERE i.path = $1 ORDER BY d.rank
                """, [path]
            ).rows
            let direct = try pipeline.process(try ImageCodec().decode(contentsOf: folder + "/" + path))
            #expect(rows.count == direct.records.count, "\(path): \(rows.count) rows, \(direct.records.count) detections directly")
            for (row, record) in zip(rows, direct.records) {
                for k in 0..<4 { #expect(abs(Float(row[k]!)! - record.box[k]) < 1e-3) }
                #expect(abs(Float(row[4]!)! - record.score) < 1e-5 && Int(row[5]!)! == record.label)
                #expect(abs(Double(row[6]!)! - record.energyInBox) < 1e-4)
            }
        }
    }

    /// The best detection of an image in SQL is `odam detect`'s best of the same file (any NMS keeps the best-scoring
    /// candidate, so the two pipelines agree on it).
    static func expectBestDetectionEqualsOdamDetect(_ db: PostgresConnection, folder: String, path: String, scratch: String) throws {
        let out = scratch + "/detect-\(abs(path.hashValue)).jsonl"
        #expect(
            try ChildProcess([RunnerCluster.odam, "detect", "--model", "fcos_synth_odamtrain", folder + "/" + path], output: out).wait()
                == 0)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("{") }
        let detections = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let best = try #require(detections.max { ($0["score"] as! Double) < ($1["score"] as! Double) })
        let row = try db.query(
            "SELECT d.x1, d.y1, d.x2, d.y2, d.score, d.label FROM detections d JOIN images i ON i.id = d.image_id WHERE i.path = $1 AND d.rank = 0",
            [path]
        ).rows[0]
        let box = best["box"] as! [Double]
        for k in 0..<4 { #expect(abs(Double(row[k]!)! - box[k]) < 1e-3, "\(path): box \(row) vs odam detect \(box)") }
        // odam detect prints four decimals.
        #expect(
            abs(Double(row[4]!)! - (best["score"] as! Double)) <= 5.1e-5 && Int(row[5]!)! == best["label"] as! Int,
            "\(path): \(row) vs \(best)")
    }

    @Test func stagedAndHTTPSourcesAndWeightsFromS3ReachTheWorkers() throws {
        let cluster = try RunnerCluster(name: "sources", environment: Self.s3Environment())
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        try RunnerCluster.synthetic(cluster.root + "/data", count: 3, seed: 31)
        let images = cluster.root + "/data/synthetic/images"
        let models = try SeaweedServer.shared().store(bucket: "odam-models")
        try models.createBucket()
        let files = try DefaultModel.files(.odamTrain)
        let weights = [UInt8](try Data(contentsOf: URL(fileURLWithPath: files.weights)))
        try models.put("shipped.safetensors", bytes: weights, contentType: "application/octet-stream")
        try SeaweedServer.shared().store(bucket: "odam-sources").createBucket()
        try """
        model:
          spec: \(files.spec)
          weights: s3://odam-models/shipped.safetensors
          sha256: \(SHA256.hex(weights))
        output:
          store: s3://odam-sources/staged
          endpoint: \(SeaweedServer.shared().endpoint)
        source:
          stage: true
        """.write(toFile: cluster.root + "/staged.yaml", atomically: true, encoding: .utf8)
        try cluster.enqueue(images, arguments: ["--job", cluster.root + "/staged.yaml"])
        let server = try StaticHTTPServer(port: UInt16(try freeLoopbackPorts(1, range: 40_000..<50_000)[0]), root: images)
        try "model:\n  spec: fcos_synth_odamtrain\noutput:\n  store: file://\(cluster.root)/objects\n".write(
            toFile: cluster.root + "/http.yaml", atomically: true, encoding: .utf8)
        try cluster.enqueue(images, arguments: ["--job", cluster.root + "/http.yaml", "--source-url", server.url])
        let db = try cluster.connect()
        let sources = try db.query("SELECT source FROM jobs ORDER BY id").rows.map { $0[0]! }
        #expect(sources[0].hasPrefix("store:originals/") && sources[1] == server.url)
        // The staged originals are in the store, byte for byte.
        let staged = try SeaweedServer.shared().store(bucket: "odam-sources", prefix: "staged/")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: images + "/000001.png")))
        #expect(try staged.get(sources[0].dropFirst("store:".count) + "/000001.png") == original)
        // The worker reads the images only through S3 (job 1) and HTTP (job 2), and the weights from S3.
        let worker = try cluster.start(
            ["worker", "--threads", "1", "--exit-when-idle", "--poll-seconds", "1", "--cache-directory", cluster.root + "/cache"],
            log: "worker")
        #expect(RunnerCluster.finish(worker, timeout: 300) == 0, "\(cluster.logText("worker"))")
        #expect(
            try db.query(
                "SELECT i.job_id, count(*) FROM image_results r JOIN images i ON i.id = r.image_id WHERE r.status = 'ok' GROUP BY 1 ORDER BY 1"
            ).rows
                == [["1", "3"], ["2", "3"]])
        #expect(
            FileManager.default.fileExists(atPath: cluster.root + "/cache/" + SHA256.hex(weights) + ".safetensors"),
            "weights cached by checksum")
        // Both jobs ran the same model on the same images: the same detections.
        let detections = try db.query(
            "SELECT i.path, d.rank, d.score FROM detections d JOIN images i ON i.id = d.image_id WHERE i.job_id = $1 ORDER BY 1, 2", ["1"]
        ).rows
        #expect(!detections.isEmpty)
        #expect(
            detections
                == (try db.query(
                    "SELECT i.path, d.rank, d.score FROM detections d JOIN images i ON i.id = d.image_id WHERE i.job_id = $1 ORDER BY 1, 2",
                    ["2"]
                ).rows))
    }
}
