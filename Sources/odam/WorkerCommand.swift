import ArgumentParser
import Foundation
import Processes
import Runner

extension Odam {
    struct WorkerCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "worker",
            abstract: "Claim shards and process them: detection, ODAM for every candidate, Odam-NMS, maps uploaded, results in SQL.",
            discussion: """
                Registers in the workers table, heartbeats, and claims shards under fenced leases; wakes on NOTIFY, polls \
                otherwise. SIGTERM (or Ctrl-C) releases the current shards at the next image and exits. Run as many as \
                you like, on as many machines as see the database (and the job's images and store).
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @OptionGroup var compute: ComputeOptions
        @OptionGroup var lease: LeaseOptions
        @Option(help: "Shards processed at once.") var concurrency = 1
        @Option(help: "Seconds between heartbeats.") var heartbeatSeconds = 3.0
        @Option(help: "Seconds between looks for work when no NOTIFY comes.") var pollSeconds = 5.0
        @Flag(help: "Exit when no shard is waiting or running.") var exitWhenIdle = false
        @Option(help: "Where weights from s3:// URLs are cached, by SHA-256.") var cacheDirectory = ".odam/cache"
        @Option(
            help:
                "The worker's memory limit (bytes, or with K, M or G): near it the buffer cache is released, and an image that would not fit fails naming the limit."
        )
        var maxMemory: MemorySize?
        @OptionGroup var logOptions: LogOptions

        func run() throws {
            logOptions.apply()
            compute.apply()
            var options = Worker.Options(connectionString: try databaseOptions.required(by: "worker"))
            options.concurrency = concurrency
            options.heartbeatSeconds = heartbeatSeconds
            options.pollSeconds = pollSeconds
            options.leases = lease.policy
            options.exitWhenIdle = exitWhenIdle
            options.cacheDirectory = cacheDirectory
            options.memoryLimitBytes = maxMemory?.bytes
            options.version = Odam.configuration.version
            let worker = Worker(options: options)
            Termination.onTermination { worker.requestStop() }
            ParentWatch.followParent(environment: ProcessInfo.processInfo.environment)
            let summary = try worker.run()
            print(
                "worker \(worker.id): \(summary.shardsCompleted) shards (\(summary.imagesProcessed) images) completed, \(summary.shardsAbandoned) abandoned"
            )
        }
    }
}
