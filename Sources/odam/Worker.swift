import ArgumentParser
import Dispatch
import Foundation
import Processes
import Runner

/// Runs `body` on SIGTERM and SIGINT (the default actions are replaced, so the process exits when its work says).
func onTermination(_ body: @escaping @Sendable () -> Void) {
    for signalNumber in [SIGTERM, SIGINT] {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler(handler: body)
        source.resume()
        TerminationSources.keep(source)
    }
}

/// Keeps the signal sources alive for the process's life.
enum TerminationSources {
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
    static func keep(_ source: any DispatchSourceSignal) { sources.append(source) }
}

/// The lease timings workers and coordinators share.
struct LeaseOptions: ParsableArguments {
    @Option(help: "Seconds a claim lasts without a heartbeat.") var leaseSeconds = 30.0
    @Option(help: "Seconds of worker silence after which its shards are put back.") var deadAfter = 15.0
    @Option(help: "Seconds one claim may run at most.") var deadlineSeconds = 3600.0

    var leases: ShardLeases { ShardLeases(leaseSeconds: leaseSeconds, deadlineSeconds: deadlineSeconds, deadWorkerSeconds: deadAfter) }
}

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

        func run() throws {
            compute.apply()
            var options = Worker.Options(connectionString: try databaseOptions.connectionString())
            options.concurrency = concurrency
            options.heartbeatSeconds = heartbeatSeconds
            options.pollSeconds = pollSeconds
            options.leases = lease.leases
            options.exitWhenIdle = exitWhenIdle
            options.cacheDirectory = cacheDirectory
            options.version = Odam.configuration.version
            let worker = Worker(options: options)
            onTermination { worker.requestStop() }
            ParentWatch.followParent(environment: ProcessInfo.processInfo.environment)
            let summary = try worker.run()
            print(
                "worker \(worker.id): \(summary.shardsCompleted) shards (\(summary.imagesProcessed) images) completed, \(summary.shardsAbandoned) abandoned"
            )
        }
    }

    struct CoordinatorCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "coordinator",
            abstract: "Rescue the shards of dead workers and expired leases, finish jobs, refresh progress rollups.",
            discussion: "Several may run: one leads (a PostgreSQL advisory lock), the others stand by and take over when it goes.")

        @OptionGroup var databaseOptions: DatabaseOptions
        @OptionGroup var lease: LeaseOptions
        @Option(help: "Seconds between rounds.") var tickSeconds = 1.0
        @Flag(help: "Exit when every job has finished.") var exitWhenDone = false

        func run() throws {
            var options = Coordinator.Options(connectionString: try databaseOptions.connectionString())
            options.tickSeconds = tickSeconds
            options.leases = lease.leases
            options.exitWhenDone = exitWhenDone
            let coordinator = Coordinator(options: options)
            onTermination { coordinator.requestStop() }
            ParentWatch.followParent(environment: ProcessInfo.processInfo.environment)
            coordinator.run()
        }
    }
}
