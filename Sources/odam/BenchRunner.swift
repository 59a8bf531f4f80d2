import ArgumentParser
import Foundation
import Postgres
import Processes
import Runner
import Synthesis

extension Odam.Bench {
    struct RunnerBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "runner",
            abstract: "Claims per second and database time per image, with worker processes on generated images.",
            discussion: """
                Two measurements on a private PostgreSQL (or --database): (1) claim throughput: a job of --claim-shards \
                one-image shards claimed and completed under their fencing tokens by --workers processes, as fast as they \
                can; (2) processing: --images generated scenes processed by --workers `odam worker` processes, and the \
                database time per image (claim and the fenced commit) against its processing time, from the results in SQL.
                """)

        @Option(help: "Worker processes.") var workers = 8
        @Option(help: "Generated images to process.") var images = 128
        @Option(help: "Images per shard in the processing run (odam enqueue's default).") var shardSize = 16
        @Option(help: "Shards of the claim-throughput run.") var claimShards = 4000
        @Option(help: "Image paths of the enqueue run (0 skips it).") var enqueueImages = 1_000_000
        @Option(help: "A database to use instead of a private embedded one (its jobs tables get the benchmark's jobs).")
        var database: String?

        func run() throws {
            let scratch = NSTemporaryDirectory() + "odam-bench-runner-\(getpid())"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            var embedded: EmbeddedPostgres?
            let connectionString: String
            if let database {
                connectionString = database
            } else {
                let server = try EmbeddedPostgres(dataDirectory: scratch + "/pg")
                try server.start()
                embedded = server
                connectionString = server.connectionString()
            }
            defer { try? embedded?.stop() }
            let db = try PostgresConnection(connectionString)
            try Migrator(directory: try Odam.Migrate.migrationsDirectory(nil)).migrate(db)
            let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            let cores = ProcessInfo.processInfo.activeProcessorCount
            say(
                "odam bench runner: \(workers) worker processes, \(cores) cores, PostgreSQL \(try db.query("SHOW server_version").rows[0][0]!)"
            )

            // 0. Enqueueing: the job, its shards and its images in one transaction (COPY), as odam enqueue records a walk.
            if enqueueImages > 0 {
                let paths = (0..<enqueueImages).map { String(format: "camera-%03d/day-%03d/frame-%07d.jpg", $0 % 97, $0 % 365, $0) }
                let enqueueStart = Date()
                _ = try Enqueuer.enqueue(db, name: "bench-enqueue", source: scratch, images: paths, shardSize: 16, specJSON: "{}")
                say(
                    String(
                        format: "enqueue: %d images in %d shards recorded in %.1f s (one transaction, COPY)", enqueueImages,
                        (enqueueImages + 15) / 16, Date().timeIntervalSince(enqueueStart)))
                try db.query("DELETE FROM jobs WHERE name = 'bench-enqueue'")
            }

            // 1. Claims per second.
            let claimJob = try Enqueuer.enqueue(
                db, name: "bench-claims", source: scratch, images: (0..<claimShards).map { "none-\($0).png" }, shardSize: 1, specJSON: "{}")
            let claimStart = Date()
            let claimers = try (0..<workers).map { index in
                try ChildProcess(
                    [executable, "bench", "claim-storm", "--job", String(claimJob)], environment: ["ODAM_DATABASE_URL": connectionString],
                    output: scratch + "/claimer-\(index).log")
            }
            for claimer in claimers { claimer.wait() }
            let claimSeconds = Date().timeIntervalSince(claimStart)
            let claimed = Int(
                try db.query("SELECT count(*) FROM shards WHERE job_id = $1 AND state = 'completed'", [String(claimJob)]).rows[0][0]!)!
            guard claimed == claimShards else {
                throw CommandFailure("only \(claimed) of \(claimShards) shards were claimed; see the claimers")
            }
            say(
                String(
                    format: "claims: %d shards claimed and completed (fenced) by %d processes in %.2f s: %.0f claims/s", claimed, workers,
                    claimSeconds, Double(claimed) / claimSeconds))

            // 2. Database time per image against processing time.
            _ = try SyntheticDataset.write(directory: scratch + "/scenes", count: images, seed: 7, generator: SceneGenerator())
            let folder = scratch + "/scenes/images"
            let walk = try Enqueuer.walk(folder)
            var spec = JobSpec()
            spec.output.store = "file://\(scratch)/objects"
            let job = try Enqueuer.enqueue(
                db, name: "bench-images", source: folder, images: walk.images, shardSize: shardSize, specJSON: try spec.json())
            let processStart = Date()
            let processes = try (0..<workers).map { index in
                try ChildProcess(
                    [executable, "worker", "--threads", "1", "--exit-when-idle", "--poll-seconds", "1"],
                    environment: ["ODAM_DATABASE_URL": connectionString], output: scratch + "/worker-\(index).log")
            }
            for process in processes { process.wait() }
            let wall = Date().timeIntervalSince(processStart)
            let row = try db.query(
                """
                SELECT count(*), avg(database_ms), avg(coalesce(fetch_ms, 0) + coalesce(decode_ms, 0) + coalesce(forward_ms, 0)
                    + coalesce(candidate_maps_ms, 0) + coalesce(odam_nms_ms, 0) + coalesce(final_maps_ms, 0) + coalesce(encode_ms, 0)
                    + coalesce(upload_ms, 0)), max(database_ms)
                FROM image_results r JOIN images i ON i.id = r.image_id WHERE i.job_id = $1 AND r.status = 'ok'
                """, [String(job)]
            ).rows[0]
            let count = Int(row[0]!)!
            guard count == images else { throw CommandFailure("only \(count) of \(images) images were processed; see the worker logs") }
            let database = Double(row[1]!)!, processing = Double(row[2]!)!
            say(
                String(
                    format:
                        "processing: %d images by %d workers in %.1f s (%.2f images/s); per image: processing %.1f ms, database %.2f ms (claim and fenced commit; max %.2f) = %.2f%% of processing",
                    count, workers, wall, Double(count) / wall, processing, database, Double(row[3]!)!, 100 * database / processing))
        }
    }

    /// One process of the claim-throughput run: claims one shard at a time and completes it under its token until
    /// none is left.
    struct ClaimStorm: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "claim-storm", abstract: "(used by odam bench runner) Claim and complete shards until none is left.",
            shouldDisplay: false)

        @Option var job: Int

        func run() throws {
            guard let database = ProcessInfo.processInfo.environment["ODAM_DATABASE_URL"] else {
                throw CommandFailure("ODAM_DATABASE_URL is not set")
            }
            let db = try PostgresConnection(database)
            let leases = ShardLeases()
            let worker = try leases.register(db, host: ProcessInfo.processInfo.hostName, version: "bench", threads: 1)
            var count = 0
            while let claim = try leases.claim(db, worker: worker).first {
                _ = try db.transaction { try leases.complete(db, claim, worker: worker, startedAt: Date()) }
                count += 1
            }
            print("claimed \(count)")
        }
    }
}
