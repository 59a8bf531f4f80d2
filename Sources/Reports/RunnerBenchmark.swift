import DefaultModel
import Engine
import Foundation
import Postgres
import Processes
import Runner
import Synthesis

/// `odam bench runner`: the runner's database costs, measured with real worker processes on a real PostgreSQL. (0)
/// recording a large walk (one transaction, COPY); (1) claim throughput: a job of one-image shards claimed and
/// completed under their fencing tokens by `workers` processes as fast as they can; (2) processing: generated scenes
/// processed by `odam worker` processes, and the database time per image (claim, listing and the fenced commit)
/// against its processing time, from the results in SQL.
public struct RunnerBenchmark: Sendable {
    public var workers = 8
    public var images = 128
    public var shardSize = 16
    public var claimShards = 4000
    public var enqueueImages = 1_000_000
    /// A database to use instead of a private embedded one.
    public var database: String?
    /// The soak run instead of the three measurements, when set.
    public var soak: Soak?
    /// The odam binary the worker and claimer processes run.
    public var executable: String
    public var migrations: String

    public init(executable: String, migrations: String) {
        self.executable = executable
        self.migrations = migrations
    }

    /// Runs the three measurements (or the soak run); `report` hears a line for each.
    public func run(report: (String) -> Void) throws {
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
        let jobs = try JobStore(connecting: connectionString)
        try Migrator(directory: migrations).migrate(jobs.connection)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        report("odam bench runner: \(workers) worker processes, \(cores) cores, PostgreSQL \(try jobs.serverVersion())")
        if let soak {
            return try runSoak(soak, jobs: jobs, connectionString: connectionString, scratch: scratch, report: report)
        }

        // 0. Enqueueing: the job, its shards and its images in one transaction (COPY), as odam enqueue records a walk.
        if enqueueImages > 0 {
            let paths = (0..<enqueueImages).map { String(format: "camera-%03d/day-%03d/frame-%07d.jpg", $0 % 97, $0 % 365, $0) }
            let (_, milliseconds) = try Stopwatch.time {
                try jobs.enqueue(NewJob(name: "bench-enqueue", spec: JobSpec(), source: scratch, images: paths, shardSize: 16))
            }
            report(
                String(
                    format: "enqueue: %d images in %d shards recorded in %.1f s (one transaction, COPY)", enqueueImages,
                    (enqueueImages + 15) / 16, milliseconds / 1000))
            try jobs.deleteJobs(named: "bench-enqueue")
        }

        // 1. Claims per second.
        let claimJob = try jobs.enqueue(
            NewJob(name: "bench-claims", spec: JobSpec(), source: scratch, images: (0..<claimShards).map { "none-\($0).png" }, shardSize: 1)
        )
        let claimSeconds = try runProcesses(["bench", "claim-storm"], connectionString: connectionString, logs: scratch + "/claimer")
        let claimed = try jobs.completedShards(job: claimJob)
        guard claimed == claimShards else { throw RunnerError("only \(claimed) of \(claimShards) shards were claimed; see the claimers") }
        report(
            String(
                format: "claims: %d shards claimed and completed (fenced) by %d processes in %.2f s: %.0f claims/s", claimed, workers,
                claimSeconds, Double(claimed) / claimSeconds))

        // 2. Database time per image against processing time.
        _ = try SyntheticDataset.write(directory: scratch + "/scenes", count: images, seed: 7, generator: SceneGenerator())
        let folder = scratch + "/scenes/images"
        let walk = try Enqueuer.walk(folder)
        var spec = JobSpec()
        spec.model.spec = DefaultModel.Variant.odamTrain.rawValue  // the model the scenes were made for
        spec.output.store = "file://\(scratch)/objects"
        let job = try jobs.enqueue(NewJob(name: "bench-images", spec: spec, source: folder, images: walk.images, shardSize: shardSize))
        let wall = try runProcesses(Self.workerArguments, connectionString: connectionString, logs: scratch + "/worker")
        let share = try jobs.databaseShare(job: job)
        guard share.images == images else {
            throw RunnerError("only \(share.images) of \(images) images were processed; see the worker logs")
        }
        report(
            String(
                format:
                    "processing: %d images by %d workers in %.1f s (%.2f images/s); per image: processing %.1f ms, database %.2f ms (claim and fenced commit; max %.2f) = %.2f%% of processing",
                share.images, workers, wall, Double(share.images) / wall, share.processingMilliseconds, share.databaseMilliseconds,
                share.maximumDatabaseMilliseconds, 100 * share.databaseMilliseconds / share.processingMilliseconds))
    }

    /// One process of the claim-throughput run: claims one shard at a time and completes it under its token until
    /// none is left; how many it completed.
    public static func claimStorm(connectionString: String) throws -> Int {
        let jobs = try JobStore(connecting: connectionString)
        let worker = try jobs.registerWorker(host: ProcessInfo.processInfo.hostName, version: "bench", threads: 1)
        var count = 0
        while let claim = try jobs.claim(worker: worker).first {
            _ = try jobs.transaction { try jobs.complete(claim, worker: worker, startedAt: Date()) }
            count += 1
        }
        return count
    }

    /// A worker of the benchmark: one thread, exits when no work is left.
    static let workerArguments = ["worker", "--threads", "1", "--exit-when-idle", "--poll-seconds", "1"]

    /// Runs `workers` processes of `odam ARGUMENTS` on the database (logs in `LOGS-K.log`) until all exit; the
    /// seconds they took.
    func runProcesses(_ arguments: [String], connectionString: String, environment: [String: String] = [:], logs: String) throws
        -> Double
    {
        let watch = Stopwatch()
        let processes = try (0..<workers).map { index in
            try ChildProcess(
                [executable] + arguments, environment: environment.merging(["ODAM_DATABASE_URL": connectionString]) { $1 },
                output: logs + "-\(index).log")
        }
        for process in processes { process.wait() }
        return watch.seconds
    }
}
