import ArgumentParser
import Foundation
import Processes
import Runner

extension Odam {
    struct CoordinatorCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "coordinator",
            abstract: "Rescue the shards of dead workers and expired leases, finish jobs, refresh progress rollups.",
            discussion: "Several may run: one leads (a PostgreSQL advisory lock), the others stand by and take over when it goes.")

        @OptionGroup var databaseOptions: DatabaseOptions
        @OptionGroup var lease: LeaseOptions
        @Option(help: "Seconds between rounds.") var tickSeconds = 1.0
        @Flag(help: "Exit when every job has finished.") var exitWhenDone = false
        @OptionGroup var logOptions: LogOptions

        func run() throws {
            logOptions.apply()
            var options = Coordinator.Options(connectionString: try databaseOptions.required(by: "coordinator"))
            options.tickSeconds = tickSeconds
            options.leases = lease.policy
            options.exitWhenDone = exitWhenDone
            let coordinator = Coordinator(options: options)
            Termination.onTermination { coordinator.requestStop() }
            ParentWatch.followParent(environment: ProcessInfo.processInfo.environment)
            coordinator.run()
        }
    }
}
