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

/// Workers killed at each point of their work, a worker fenced out while paused, and a run through PostgreSQL
/// restarts and a proxy that fails S3 requests: each job completes with every image recorded exactly once.
@Suite(.serialized)
struct WorkerFailureTests {
    /// Eight synthetic scenes in two shards, in a file store under the cluster's folder.
    static func smallJob(
        _ cluster: RunnerCluster, seed: UInt64, count: Int = 8, shardSize: Int = 4, spec: String? = nil, enqueueArguments: [String] = []
    ) throws {
        try RunnerCluster.synthetic(cluster.root + "/data", count: count, seed: seed)
        try (spec ?? "output:\n  store: file://\(cluster.root)/objects\n").write(
            toFile: cluster.root + "/job.yaml", atomically: true, encoding: .utf8)
        try cluster.enqueue(
            cluster.root + "/data/synthetic/images",
            arguments: ["--job", cluster.root + "/job.yaml", "--shard-size", String(shardSize)] + enqueueArguments)
    }

    /// Every image has exactly one ok row, and each maps object exists once.
    static func expectEverythingOnce(_ db: PostgresConnection, images: Int) throws {
        #expect(
            try db.query("SELECT count(*), count(DISTINCT image_id) FROM image_results WHERE status = 'ok'").rows == [
                [String(images), String(images)]
            ])
        #expect(
            try db.query("SELECT count(*) FROM images i LEFT JOIN image_results r ON r.image_id = i.id WHERE r.image_id IS NULL").rows == [
                ["0"]
            ])
        #expect(try db.query("SELECT count(*) FROM heat_map_objects WHERE kind = 'maps'").rows == [[String(images)]])
        #expect(try db.query("SELECT count(*) FROM shards WHERE state <> 'completed'").rows == [["0"]])
        // Results were written only by the claims that completed their shards.
        #expect(
            try db.query(
                """
                SELECT count(*) FROM image_results r JOIN shards s ON s.id = r.shard_id
                WHERE NOT EXISTS (SELECT 1 FROM shard_attempts a WHERE a.shard_id = s.id AND a.lease_token = r.lease_token AND a.outcome = 'completed')
                """
            ).rows == [["0"]])
    }

    @Test(arguments: ["claimed", "inference", "upload", "commit"])
    func aKilledWorkersShardIsBackWithinThirtySeconds(point: String) throws {
        let cluster = try RunnerCluster(name: "crash_\(point)")
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        try Self.smallJob(cluster, seed: 21)
        let db = try cluster.connect()
        let victim = try cluster.worker("victim", environment: ["ODAM_FAILPOINT": point])
        #expect(
            RunnerCluster.waitUntil(timeout: 300) { cluster.logText("victim").contains("failpoint \(point) reached") },
            "\(cluster.logText("victim"))")
        let held = try db.query("SELECT id, lease_token FROM shards WHERE state = 'running'").rows
        try #require(held.count == 1, "the victim holds one shard")
        victim.send(SIGKILL)
        let killed = Date()
        victim.wait()
        let coordinator = try cluster.coordinator()
        let rescuer = try cluster.worker("rescuer")
        let back = try RunnerCluster.waitUntil(timeout: 60) {
            try !db.query(
                "SELECT 1 FROM shards WHERE id = $1 AND lease_token IS DISTINCT FROM $2 AND state IN ('running', 'completed')",
                [held[0][0], held[0][1]]
            ).rows
                .isEmpty
        }
        let seconds = Date().timeIntervalSince(killed)
        #expect(back && seconds < 30, "the shard was back in work after \(seconds) s")
        print("killed at \(point): the shard was back in work after \(String(format: "%.1f", seconds)) s")
        #expect(RunnerCluster.finish(rescuer, timeout: 300) == 0, "\(cluster.logText("rescuer"))")
        #expect(RunnerCluster.finish(coordinator, timeout: 30) == 0)
        try Self.expectEverythingOnce(db, images: 8)
        #expect(try db.query("SELECT outcome FROM shard_attempts WHERE lease_token = $1", [held[0][1]]).rows == [["crash"]])
    }

    @Test func sigtermReleasesTheShardAndExits() throws {
        let cluster = try RunnerCluster(name: "sigterm")
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        try Self.smallJob(cluster, seed: 24, count: 4)
        let db = try cluster.connect()
        let release = cluster.root + "/release"
        let worker = try cluster.worker("stopping", environment: ["ODAM_FAILPOINT": "inference", "ODAM_FAILPOINT_RELEASE": release])
        #expect(RunnerCluster.waitUntil(timeout: 300) { cluster.logText("stopping").contains("failpoint inference reached") })
        let token = try db.query("SELECT lease_token FROM shards WHERE state = 'running'").rows[0][0]!
        worker.send(SIGTERM)
        FileManager.default.createFile(atPath: release, contents: Data())
        #expect(RunnerCluster.finish(worker, timeout: 60) == 0, "\(cluster.logText("stopping"))")
        // Released at the next image: claimable at once, no budget spent, nothing recorded, the worker marked stopped.
        #expect(try db.query("SELECT state, attempt, crashes, lease_token FROM shards").rows == [["available", "0", "0", nil]])
        #expect(try db.query("SELECT outcome FROM shard_attempts WHERE lease_token = $1", [token]).rows == [["released"]])
        #expect(try db.query("SELECT count(*) FROM image_results").rows == [["0"]])
        #expect(try db.query("SELECT stopped_at IS NOT NULL FROM workers").rows == [["t"]])
        let next = try cluster.worker("next")
        #expect(RunnerCluster.finish(next, timeout: 300) == 0)
        try Self.expectEverythingOnce(db, images: 4)
    }

    @Test func aFencedOutWorkerCannotCommitAfterAnotherFinished() throws {
        let cluster = try RunnerCluster(name: "fencing")
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        try Self.smallJob(cluster, seed: 22, count: 4)
        let db = try cluster.connect()
        let release = cluster.root + "/release"
        let paused = try cluster.worker("paused", environment: ["ODAM_FAILPOINT": "commit", "ODAM_FAILPOINT_RELEASE": release])
        #expect(RunnerCluster.waitUntil(timeout: 300) { cluster.logText("paused").contains("failpoint commit reached") })
        let token = try db.query("SELECT lease_token FROM shards WHERE state = 'running'").rows[0][0]!
        // Cut it off: stopped (no heartbeats), and its sessions ended by the server.
        paused.send(SIGSTOP)
        try db.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        let coordinator = try cluster.coordinator()
        let other = try cluster.worker("other")
        #expect(RunnerCluster.finish(other, timeout: 300) == 0, "\(cluster.logText("other"))")
        let winner = try db.query("SELECT lease_token FROM shard_attempts WHERE outcome = 'completed'").rows
        #expect(winner.count == 1 && winner[0][0] != token, "another claim completed the shard")
        // Let the fenced-out worker go on to its commit.
        FileManager.default.createFile(atPath: release, contents: Data())
        paused.send(SIGCONT)
        #expect(
            RunnerCluster.waitUntil(timeout: 60) { cluster.logText("paused").contains("nothing committed") }, "\(cluster.logText("paused"))"
        )
        paused.send(SIGTERM)
        #expect(RunnerCluster.finish(paused, timeout: 60) != nil)
        #expect(RunnerCluster.finish(coordinator, timeout: 30) == 0)
        try Self.expectEverythingOnce(db, images: 4)
        #expect(try db.query("SELECT count(*) FROM image_results WHERE lease_token = $1", [token]).rows == [["0"]])
        #expect(try db.query("SELECT count(*) FROM shard_attempts WHERE outcome = 'completed'").rows == [["1"]])
    }

    @Test func aJobCompletesThroughDatabaseRestartsAndFailingS3Requests() throws {
        // A server of its own, as this test restarts it.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-faults-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try EmbeddedPostgres(dataDirectory: root + "/pg")
        server.durable = false
        try server.start()
        defer { try? server.stop() }
        try Migrator(directory: RunnerCluster.migrations).migrate(try PostgresConnection(server.connectionString()))
        // Every third S3 connection fails: a 503 SlowDown, a 500, or a reset, in turn.
        let seaweed = try SeaweedServer.shared()
        let proxyPort = try freeLoopbackPorts(1, range: 40_000..<50_000)[0]
        let proxy = try FaultProxy(port: UInt16(proxyPort), upstreamPort: UInt16(seaweed.port)) { n in
            guard n % 3 == 1 else { return nil }
            return [FaultProxy.Fault.slowDown, .internalError, .drop][(n / 3) % 3]
        }
        try seaweed.store(bucket: "odam-faults").createBucket()
        let cluster = RunnerCluster(
            root: root, connectionString: server.connectionString(),
            environment: [
                "AWS_ACCESS_KEY_ID": seaweed.accessKey, "AWS_SECRET_ACCESS_KEY": seaweed.secretKey,
            ])
        try Self.smallJob(
            cluster, seed: 23, count: 12, shardSize: 2,
            spec: "output:\n  store: s3://odam-faults/run\n  endpoint: http://127.0.0.1:\(proxy.port)\n")
        let coordinator = try cluster.coordinator()
        let workers = try (1...2).map { try cluster.worker("worker-\($0)") }
        let db = try cluster.connect()
        #expect(
            try RunnerCluster.waitUntil(timeout: 300) {
                try db.query("SELECT count(*) >= 2 FROM shards WHERE state = 'completed'").rows == [["t"]]
            })
        // Restart PostgreSQL under the running job (sessions are ended, the data kept).
        try server.stop()
        usleep(500_000)
        try server.start()
        for (index, worker) in workers.enumerated() {
            #expect(RunnerCluster.finish(worker, timeout: 400) == 0, "\(cluster.logText("worker-\(index + 1)"))")
        }
        #expect(RunnerCluster.finish(coordinator, timeout: 60) == 0, "\(cluster.logText("coordinator"))")
        let after = try cluster.connect()
        try Self.expectEverythingOnce(after, images: 12)
        #expect(
            cluster.logText("worker-1").contains("reconnecting") || cluster.logText("worker-2").contains("reconnecting")
                || cluster.logText("worker-1").contains("retrying") || cluster.logText("worker-2").contains("retrying"),
            "the workers saw the restart")
        let retries = Int(try after.query("SELECT coalesce(sum(upload_retries), 0) FROM image_results").rows[0][0]!)!
        #expect(proxy.faultsInjected > 0 && retries > 0, "\(proxy.faultsInjected) faults injected, \(retries) retries recorded in SQL")
        // The objects the rows describe are in the store, whole.
        let store = seaweed.store(bucket: "odam-faults", prefix: "run/")
        for object in try after.query("SELECT key, sha256 FROM heat_map_objects").rows {
            #expect(try store.get(object[0]!).map { SHA256.hex($0) } == object[1]!)
        }
    }

    /// An S3 store that refuses connections is an outage to wait out, not the shards' fault: the shard is released
    /// uncharged (no error attempt), and the job completes once the store answers.
    @Test func anUnreachableStoreIsWaitedOutUncharged() throws {
        let seaweed = try SeaweedServer.shared()
        try seaweed.store(bucket: "odam-outage").createBucket()
        let cluster = try RunnerCluster(
            name: "store_outage", environment: ["AWS_ACCESS_KEY_ID": seaweed.accessKey, "AWS_SECRET_ACCESS_KEY": seaweed.secretKey])
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        // Nothing listens on the store's port until the proxy starts below.
        let port = try freeLoopbackPorts(1, range: 40_000..<50_000)[0]
        try Self.smallJob(
            cluster, seed: 29, count: 4, shardSize: 2,
            spec: "output:\n  store: s3://odam-outage/run\n  endpoint: http://127.0.0.1:\(port)\n",
            enqueueArguments: ["--skip-checks"])
        let coordinator = try cluster.coordinator()
        let worker = try cluster.worker("worker")
        #expect(
            RunnerCluster.waitUntil(timeout: 120) { cluster.logText("worker").contains("the object store is unreachable") },
            "\(cluster.logText("worker"))")
        let proxy = try FaultProxy(port: UInt16(port), upstreamPort: UInt16(seaweed.port)) { _ in nil }
        #expect(RunnerCluster.finish(worker, timeout: 300) == 0, "\(cluster.logText("worker"))")
        #expect(RunnerCluster.finish(coordinator, timeout: 60) == 0, "\(cluster.logText("coordinator"))")
        _ = proxy
        let db = try cluster.connect()
        try Self.expectEverythingOnce(db, images: 4)
        #expect(try db.query("SELECT count(*) FROM shard_attempts WHERE outcome = 'error'").rows == [["0"]])
        #expect(
            try db.query("SELECT count(*) > 0 FROM shard_attempts WHERE outcome = 'released' AND error LIKE 'object store unreachable%'")
                .rows == [["t"]])
    }

    /// A worker under `--max-memory`: an image whose decode and forward pass would not fit in what is left fails
    /// naming the limit, the other images of its shard are processed, and every ok image records the worker's
    /// resident memory, which stays under the limit.
    @Test func anImageBeyondTheWorkersMemoryLimitFailsNamingIt() throws {
        let cluster = try RunnerCluster(name: "worker_memory")
        try RunnerCluster.synthetic(cluster.root, count: 2, seed: 8)
        // 6000x6000 pixels: about 1.3 GB to decode and detect (36 bytes a pixel), a few hundred KB as a PNG.
        let side = 6000
        let large = try ImageCodec.encodePNG(pixels: [UInt8](repeating: 90, count: side * side * 3), width: side, height: side, channels: 3)
        try Data(large).write(to: URL(fileURLWithPath: cluster.root + "/synthetic/images/large.png"))
        try cluster.enqueue(cluster.root + "/synthetic/images", arguments: ["--shard-size", "3"])
        let worker = try cluster.start(
            ["worker", "--threads", "1", "--exit-when-idle", "--poll-seconds", "1", "--max-memory", "700M"], log: "worker")
        #expect(RunnerCluster.finish(worker, timeout: 300) == 0, "\(cluster.logText("worker"))")
        let db = try PostgresConnection(cluster.connectionString)
        let rows = try db.query(
            "SELECT i.path, r.status, r.error, r.worker_rss_bytes FROM image_results r JOIN images i ON i.id = r.image_id ORDER BY i.path"
        ).rows
        #expect(rows.count == 3, "\(rows)")
        let failed = rows.filter { $0[1] == "failed" }
        #expect(failed.count == 1 && failed[0][0] == "large.png", "\(rows)")
        #expect(
            failed.first?[2]?.hasPrefix("large.png: does not fit in the worker's memory limit (--max-memory 700 MiB") == true, "\(rows)")
        let ok = rows.filter { $0[1] == "ok" }
        #expect(ok.count == 2 && ok.allSatisfy { Int($0[3] ?? "") ?? .max < 700 << 20 }, "\(rows)")
    }
}
