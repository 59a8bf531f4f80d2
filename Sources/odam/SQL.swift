import ArgumentParser
import Foundation
import Postgres
import Processes

extension Odam {
    struct SQL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sql", abstract: "Open psql on the runner's database (the embedded one when none is configured).")

        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(parsing: .captureForPassthrough, help: "Arguments passed to psql (for example -c 'SELECT ...').") var psqlArguments:
            [String] = []

        func run() throws {
            let status = try databaseOptions.session { connection -> Int32 in
                let psql =
                    databaseOptions.configured == nil
                    ? try DatabaseOptions.embedded().programPath("psql")
                    : ((ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/psql" }
                        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/psql")
                guard FileManager.default.isExecutableFile(atPath: psql) else {
                    throw CommandFailure("\(psql): no psql here (install PostgreSQL's client)")
                }
                // A child rather than exec: the embedded server is stopped when psql ends. psql reads the terminal. The
                // password goes through the environment (PGPASSWORD), never argv, which every user sees in `ps`.
                guard let info = ConnectionInfo(connection) else {
                    throw CommandFailure("the database URL is not a libpq connection string")
                }
                return try ChildProcess(
                    [psql, info.withoutPassword] + psqlArguments, environment: info.password.map { ["PGPASSWORD": $0] } ?? [:],
                    inheritingInput: true
                ).wait()
            }
            if status != 0 { throw ExitCode(status) }
        }
    }
}
