import ArgumentParser
import Foundation
import Postgres

/// Where the runner's database is: `--database`, `ODAM_DATABASE_URL`, or odam's own embedded server.
struct DatabaseOptions: ParsableArguments {
    @Option(
        help: "A libpq connection string or postgres:// URL (default: ODAM_DATABASE_URL, else odam's embedded server in .odam/postgres).")
    var database: String?

    /// The configured database, or nil for the embedded one.
    var configured: String? { database ?? ProcessInfo.processInfo.environment["ODAM_DATABASE_URL"] }

    /// The embedded server's handle (in `.odam/postgres` of the current folder).
    static func embedded() throws -> EmbeddedPostgres {
        try EmbeddedPostgres(dataDirectory: FileManager.default.currentDirectoryPath + "/.odam/postgres")
    }

    /// The connection string, starting the embedded server when no database is configured.
    func connectionString() throws -> String {
        if let configured { return configured }
        let embedded = try Self.embedded()
        try embedded.start()
        return embedded.connectionString()
    }

    /// A connection, starting the embedded server when no database is configured.
    func connect() throws -> PostgresConnection { try PostgresConnection(try connectionString()) }

    /// Runs `body` with the connection string; an embedded server started for it is stopped afterwards (short
    /// commands such as status, results and sql leave no server behind that they did not find).
    func session<R>(_ body: (String) throws -> R) throws -> R {
        if let configured { return try body(configured) }
        let lease = try EmbeddedPostgresLease(try Self.embedded())
        defer { lease.release() }
        return try body(lease.server.connectionString())
    }
}

extension Odam {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the runner's schema (Migrations/NNNN_name.sql) in order, each in a transaction, once.")

        @OptionGroup var databaseOptions: DatabaseOptions
        @Option(help: "The folder of migration files (default: ODAM_MIGRATIONS, ./Migrations, or the checkout's next to the binary).")
        var migrations: String?

        func run() throws {
            let connection = try databaseOptions.connect()
            let applied = try Migrator(directory: try Self.migrationsDirectory(migrations)).migrate(connection)
            print(applied.isEmpty ? "schema up to date" : "applied " + applied.joined(separator: ", "))
        }

        /// Where the migration files are: the option, `ODAM_MIGRATIONS`, `./Migrations`, the checkout of the binary
        /// (`.build/release/odam` → `Migrations`), or `/usr/share/odam/Migrations` (the Docker image).
        static func migrationsDirectory(_ option: String?) throws -> String {
            if let option {
                guard FileManager.default.fileExists(atPath: option) else { throw CommandFailure("\(option): no such migrations folder") }
                return option
            }
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            let candidates = [
                ProcessInfo.processInfo.environment["ODAM_MIGRATIONS"], "Migrations",
                binary.appendingPathComponent("../../../Migrations").standardized.path, "/usr/share/odam/Migrations",
            ].compactMap { $0 }
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/0001_runner_schema.sql") }) else {
                throw CommandFailure("no Migrations folder found (looked in \(candidates.joined(separator: ", "))); pass --migrations")
            }
            return found
        }
    }
}
