import ArgumentParser
import Foundation
import Reports
import Runner

extension Odam {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Progress of every job, and the live workers.")

        @OptionGroup var databaseOptions: DatabaseOptions
        @Flag(help: "Redraw every second until Ctrl-C.") var watch = false
        @Flag(help: "Print one JSON object (jobs, live_workers) instead of lines.") var json = false

        func run() throws {
            try databaseOptions.session { connectionString in
                let jobs = try JobStore(connecting: connectionString)
                if json {
                    guard !watch else { throw ValidationError("--json prints once: drop --watch") }
                    print(try JobReport.statusJSON(jobs))
                    return
                }
                repeat {
                    let lines = try JobReport.status(jobs)
                    if watch { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                    print(lines.joined(separator: "\n"))
                    if watch { Thread.sleep(forTimeInterval: 1) }
                } while watch
            }
        }
    }
}
