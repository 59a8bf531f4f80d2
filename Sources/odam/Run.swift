import ArgumentParser
import Foundation
import Logging
import Postgres
import Processes
import Reports
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
        @Flag(help: "Skip the HTML report (.odam/reports/jobN/index.html) written at the end.") var noReport = false
        @Argument(help: "The folder of images.") var directory: String

        /// The advisory lock key under which runs decide to resume or enqueue ("oden" in ASCII; the coordinator's
        /// leadership takes "odam").
        static let enqueueLock = 0x6F64_656E

        /// The unfinished job over the same folder and spec (resumed), else a new one. One `odam run` at a time
        /// decides, under a session advisory lock released on return, so that two started together share one job.
        func resumeOrEnqueue(_ jobs: JobStore, workerCount: Int, threadCount: Int) throws -> Int {
            let submission = try jobOptions.submission(directory)
            return try jobs.withAdvisoryLock(Self.enqueueLock) {
                if let unfinished = try submission.unfinishedJob(in: jobs) {
                    // The same folder and spec, not finished (an earlier run was stopped or killed): resume it.
                    say(
                        "job \(unfinished.job): resuming (\(unfinished.imagesDone) of \(unfinished.imageCount) images done); \(workerCount) workers × \(threadCount) threads"
                    )
                    return unfinished.job
                }
                // Without a shard size, a small folder is cut so that every worker gets work (16 images per shard at most).
                let recorded = try submission.record(
                    in: jobs, defaultShardSize: { images in max(1, min(16, images / (2 * workerCount))) },
                    report: { Log.enqueue.notice("\($0)") })
                say(
                    "job \(recorded.job): \(recorded.images) images in \(recorded.shards) shards; \(workerCount) workers × \(threadCount) threads"
                )
                return recorded.job
            }
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
            let jobs = try JobStore(connecting: connectionString)
            let applied = try Migrator(directory: try Migrate.migrationsDirectory(migrations)).migrate(jobs.connection)
            if !applied.isEmpty { say("schema: applied \(applied.joined(separator: ", "))") }
            let job = try resumeOrEnqueue(jobs, workerCount: workerCount, threadCount: threadCount)

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
            Termination.onTermination { interrupted.set() }
            defer {
                for child in children { child.send(SIGTERM) }
                for child in children { child.wait() }
            }
            try watch(job: job, jobs: jobs, started: started, workers: Array(children.dropFirst()), interrupted: interrupted)
            say("")
            let (lines, lost) = try JobReport.summary(job: job, seconds: Date().timeIntervalSince(started), jobs)
            for line in lines { say(line) }
            if !noReport {
                // The page is a view of what is in SQL: failing to draw it does not fail the job.
                do {
                    let (page, problems) = try JobPage().write(
                        job: job, jobs: jobs, to: FileManager.default.currentDirectoryPath + "/.odam/reports/job\(job)")
                    for problem in problems { Log.report.warning("\(problem)") }
                    say("Report: \(page) (open it in a browser; odam report \(job) --out DIR writes it elsewhere)")
                } catch {
                    Log.report.error("the report of job \(job) could not be written: \(error)")
                }
            }
            if lost > 0 {
                throw CommandFailure("job \(job) lost \(lost) images with failed shards (SELECT * FROM failures WHERE job_id = \(job))")
            }
        }

        /// Draws the progress bar until the job finishes (or every worker died, or Ctrl-C).
        func watch(job: Int, jobs: JobStore, started: Date, workers: [ChildProcess], interrupted: InterruptFlag) throws {
            // A terminal gets a bar redrawn in place; a log gets a line at each tenth of the job.
            let terminal = isatty(STDERR_FILENO) == 1
            var lastTenth = -1
            while true {
                let progress = try jobs.progress(job: job)
                let total = progress.imageCount, done = progress.imagesDone
                let line = ProgressLine.render(
                    done: done, total: total, elapsed: Date().timeIntervalSince(started), workers: try jobs.liveWorkers().count)
                if terminal {
                    FileHandle.standardError.write(Data(("\r" + line).utf8))
                } else if done * 10 / max(total, 1) != lastTenth {
                    lastTenth = done * 10 / max(total, 1)
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                }
                if progress.isFinished { return }
                if interrupted.isSet { throw CommandFailure("interrupted; the job stays queued (odam worker resumes it)") }
                if workers.allSatisfy({ $0.exitCode != nil }) {
                    throw CommandFailure("every worker exited; see .odam/logs/worker-*.log")
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
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

/// Prints a line at once (standard output is block-buffered when it is not a terminal, and the progress bar on
/// standard error would overtake it).
func say(_ line: String = "") { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
