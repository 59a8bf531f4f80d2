import ArgumentParser
import Foundation
import Postgres
import Processes

extension Odam {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Progress of every job, and the live workers.")

        @OptionGroup var databaseOptions: DatabaseOptions
        @Flag(help: "Redraw every second until Ctrl-C.") var watch = false

        func run() throws {
            try databaseOptions.session { try show(PostgresConnection($0)) }
        }

        func show(_ db: PostgresConnection) throws {
            repeat {
                var lines: [String] = []
                let jobs = try db.query(
                    """
                    SELECT job_id, name, image_count, images_done, shards_completed, shard_count, shards_running, shards_failed,
                        finished_at IS NOT NULL, extract(epoch FROM coalesce(finished_at, now()) - created_at), images_lost,
                        last_shard_error
                    FROM job_progress ORDER BY job_id
                    """
                ).rows
                for job in jobs {
                    let total = Int(job[2]!)!, done = Int(job[3]!)!
                    let state = job[8] == "t" ? "finished" : "\(job[6]!) shards running"
                    lines.append(
                        "job \(job[0]!) \(job[1]!): "
                            + ProgressLine.render(done: done, total: total, elapsed: Double(job[9]!)!, workers: nil)
                            + "· shards \(job[4]!)/\(job[5]!) done, \(job[7]!) failed · \(state)")
                    if let lost = Int(job[10] ?? "0"), lost > 0 {
                        lines.append("  \(lost) images lost with failed shards; the last shard error: \(job[11] ?? "-")")
                    }
                }
                if jobs.isEmpty { lines.append("no jobs") }
                let workers = try db.query("SELECT id, host, pid, threads, shards_held, heartbeats FROM live_workers ORDER BY id").rows
                lines.append("live workers: \(workers.count)")
                for worker in workers {
                    lines.append(
                        "  worker \(worker[0]!) on \(worker[1]!) (pid \(worker[2]!), \(worker[3]!) threads): \(worker[4]!) shards held, \(worker[5]!) heartbeats"
                    )
                }
                if watch { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print(lines.joined(separator: "\n"))
                if watch { Thread.sleep(forTimeInterval: 1) }
            } while watch
        }
    }

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
