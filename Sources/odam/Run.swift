import ArgumentParser
import Foundation
import Postgres
import Processes
import Runner

extension Odam {
    struct RunCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "The main job on one machine: migrate, enqueue DIR, run a coordinator and workers, show progress, summarize.",
            discussion: """
                With no database configured, odam starts its own PostgreSQL (data in .odam/postgres, a Unix socket, no \
                TCP port) and stops it at the end; the maps go to the job's store (default: .odam/objects). The \
                coordinator and the workers are child processes, their logs in .odam/logs. Query the results with \
                `odam sql` (embedded) or psql, export them with `odam results`.
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @OptionGroup var jobOptions: JobOptions
        @Option(help: "Worker processes (default: one per core).") var workers: Int?
        @Option(help: "Compute threads per worker (default: cores / workers, at least 1).") var threads: Int?
        @Option(help: "The folder of migration files (found as odam migrate finds it when not given).") var migrations: String?
        @Argument(help: "The folder of images.") var directory: String

        /// The advisory lock key under which runs decide to resume or enqueue ("oden" in ASCII; the coordinator's
        /// leadership takes "odam").
        static let enqueueLock = 0x6F64_656E

        /// The unfinished job over the same folder and spec (resumed), else a new one. One `odam run` at a time
        /// decides, under a session advisory lock released on return, so that two started together share one job.
        func resumeOrEnqueue(db: PostgresConnection, workerCount: Int, threadCount: Int) throws -> Int {
            try db.query("SELECT pg_advisory_lock($1::bigint)", [String(Self.enqueueLock)])
            defer { _ = try? db.query("SELECT pg_advisory_unlock($1::bigint)", [String(Self.enqueueLock)]) }
            if let unfinished = try jobOptions.unfinishedJob(for: directory, connection: db) {
                // The same folder and spec, not finished (an earlier run was stopped or killed): resume it.
                say(
                    "job \(unfinished.job): resuming (\(unfinished.done) of \(unfinished.images) images done); \(workerCount) workers × \(threadCount) threads"
                )
                return unfinished.job
            }
            // Without a shard size, a small folder is cut so that every worker gets work (16 images per shard at most).
            let (job, imageCount, shardCount) = try jobOptions.enqueue(directory, connection: db) { images in
                max(1, min(16, images / (2 * workerCount)))
            }
            say("job \(job): \(imageCount) images in \(shardCount) shards; \(workerCount) workers × \(threadCount) threads")
            return job
        }

        func run() throws {
            let started = Date()
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let workerCount = max(1, workers ?? cores)
            let threadCount = max(1, threads ?? cores / workerCount)
            var lease: EmbeddedPostgresLease?
            let connectionString: String
            if let configured = databaseOptions.configured {
                connectionString = configured
            } else {
                // Shared with any other odam command in this folder; stopped by the last one to leave.
                lease = try EmbeddedPostgresLease(try DatabaseOptions.embedded())
                connectionString = lease!.server.connectionString()
                say("database: odam's embedded PostgreSQL in \(lease!.server.dataDirectory)")
            }
            defer { lease?.release() }
            let db = try PostgresConnection(connectionString)
            let applied = try Migrator(directory: try Migrate.migrationsDirectory(migrations)).migrate(db)
            if !applied.isEmpty { say("schema: applied \(applied.joined(separator: ", "))") }
            let job = try resumeOrEnqueue(db: db, workerCount: workerCount, threadCount: threadCount)

            let logs = FileManager.default.currentDirectoryPath + "/.odam/logs"
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            // The connection string reaches the children in their environment, not their arguments (ps shows those).
            // They also die with this process (PR_SET_PDEATHSIG), releasing their shards, if it is killed.
            let database = ["ODAM_DATABASE_URL": connectionString].merging(ParentWatch.environment) { $1 }
            var children = [try ChildProcess([executable, "coordinator"], environment: database, output: logs + "/coordinator.log")]
            for index in 0..<workerCount {
                children.append(
                    try ChildProcess(
                        [executable, "worker", "--threads", String(threadCount)], environment: database,
                        output: logs + "/worker-\(index + 1).log"))
            }
            let interrupted = InterruptFlag()
            onTermination { interrupted.set() }
            defer {
                for child in children { child.send(SIGTERM) }
                for child in children { child.wait() }
            }
            try watch(job: job, db: db, started: started, workers: Array(children.dropFirst()), interrupted: interrupted)
            say("")
            let lost = try summarize(job: job, db: db, seconds: Date().timeIntervalSince(started))
            if lost > 0 {
                throw CommandFailure("job \(job) lost \(lost) images with failed shards (SELECT * FROM failures WHERE job_id = \(job))")
            }
        }

        /// Draws the progress bar until the job finishes (or every worker died, or Ctrl-C).
        func watch(job: Int, db: PostgresConnection, started: Date, workers: [ChildProcess], interrupted: InterruptFlag) throws {
            // A terminal gets a bar redrawn in place; a log gets a line at each tenth of the job.
            let terminal = isatty(STDERR_FILENO) == 1
            var lastTenth = -1
            while true {
                let row = try db.query(
                    "SELECT image_count, images_done, finished_at IS NOT NULL, (SELECT count(*) FROM live_workers) FROM job_progress WHERE job_id = $1",
                    [String(job)]
                ).rows[0]
                let total = Int(row[0]!)!, done = Int(row[1]!)!, finished = row[2] == "t"
                let elapsed = Date().timeIntervalSince(started)
                let line = ProgressLine.render(done: done, total: total, elapsed: elapsed, workers: Int(row[3]!)!)
                if terminal {
                    FileHandle.standardError.write(Data(("\r" + line).utf8))
                } else if done * 10 / max(total, 1) != lastTenth {
                    lastTenth = done * 10 / max(total, 1)
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                }
                if finished { return }
                if interrupted.isSet { throw CommandFailure("interrupted; the job stays queued (odam worker resumes it)") }
                if workers.allSatisfy({ $0.exitCode != nil }) {
                    throw CommandFailure("every worker exited; see .odam/logs/worker-*.log")
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
        }

        /// Prints the summary; returns how many images the job lost with shards that failed for good.
        func summarize(job: Int, db: PostgresConnection, seconds: Double) throws -> Int {
            let totals = try db.query(
                """
                SELECT count(*) FILTER (WHERE r.status = 'ok'), count(*) FILTER (WHERE r.status = 'failed'), coalesce(sum(r.kept), 0),
                    coalesce(sum(r.kept_by_nms), 0), coalesce(sum(r.candidates), 0),
                    round(avg(r.forward_ms)::numeric, 1), round(avg(r.candidate_maps_ms)::numeric, 1), round(avg(r.odam_nms_ms)::numeric, 2),
                    round(avg(r.final_maps_ms)::numeric, 1), round(avg(r.upload_ms)::numeric, 1), round(avg(r.database_ms)::numeric, 2),
                    string_agg(DISTINCT r.map_path, ', '), round(min(r.min_map_r)::numeric, 5), coalesce(sum(r.levels_recomputed), 0)
                FROM image_results r JOIN images i ON i.id = r.image_id WHERE i.job_id = $1
                """, [String(job)]
            ).rows[0].map { $0 ?? "-" }
            let lost = try db.query(
                "SELECT images_lost, shards_failed, last_shard_error FROM job_progress WHERE job_id = $1", [String(job)]
            )
            .rows[0]
            let lostCount = Int(lost[0] ?? "0") ?? 0
            say(
                "job \(job) finished in \(String(format: "%.1f", seconds)) s: \(totals[0]) images ok, \(totals[1]) failed"
                    + (lostCount > 0 ? ", \(lostCount) lost with \(lost[1] ?? "?") failed shards" : ""))
            if lostCount > 0 { say("  the last failed shard's error: \(lost[2] ?? "-")") }
            say("  detections kept: \(totals[2]) (plain NMS would keep \(totals[3])) of \(totals[4]) candidates")
            say(
                "  mean ms per image: forward \(totals[5]), candidate maps \(totals[6]), Odam-NMS \(totals[7]), final maps \(totals[8]), upload \(totals[9]), database \(totals[10])"
            )
            say(
                "  maps: \(totals[11]); lowest r of a checked map against plain autograd \(totals[12]); levels recomputed \(totals[13]) (map_agreement)"
            )
            for failure in try db.query("SELECT path, error FROM failures WHERE job_id = $1 LIMIT 5", [String(job)]).rows {
                say("  failed: \(failure[0] ?? "") — \(failure[1] ?? "")")
            }
            say(
                """

                Query the results (odam sql opens psql on the embedded database):
                  SELECT path, rank, label, score, energy_in_box, maps_key FROM detection_maps WHERE job_id = \(job) ORDER BY score DESC LIMIT 10;
                  SELECT path, total_ms FROM slowest_images WHERE job_id = \(job) LIMIT 5;
                  SELECT * FROM failures WHERE job_id = \(job);
                Export: odam results \(job) --format coco|jsonl|csv
                """)
            return lostCount
        }
    }
}

/// A flag set from a signal handler and read by the main thread.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// One line of progress: a bar, images done, rate, ETA and live workers.
enum ProgressLine {
    static func render(done: Int, total: Int, elapsed: Double, workers: Int?) -> String {
        let width = 30
        let filled = total > 0 ? min(width, done * width / total) : width
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? String(format: "%.0f s", Double(total - done) / rate) : "?"
        let live = workers.map { " · \($0) workers" } ?? ""
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + "\(done)/\(total) images · \(String(format: "%.2f", rate)) img/s · ETA \(eta)\(live)   "
    }
}

/// Prints a line at once (standard output is block-buffered when it is not a terminal, and the progress bar on
/// standard error would overtake it).
func say(_ line: String = "") { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
