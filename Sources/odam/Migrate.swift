import ArgumentParser
import Foundation
import Postgres

/// Where the runner's database is: `--database`, `ODAM_DATABASE_URL`, or odam's own embedded server.
struct DatabaseOptions: ParsableArguments {
    @Option(
        help: "A libpq connection string or postgres:// URL (default: ODAM_DATABASE_URL, else odam's embedded server in .odam/postgres).")
    var database: String?

    /// A connection, starting the embedded server when no database is configured.
    func connect() throws -> PostgresConnection {
        if let url = database ?? ProcessInfo.processInfo.environment["ODAM_DATABASE_URL"] { return try PostgresConnection(url) }
        let embedded = try EmbeddedPostgres(dataDirectory: FileManager.default.currentDirectoryPath + "/.odam/postgres")
        try embedded.start()
        return try PostgresConnection(embedded.connectionString())
    }
}

extension Odam {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the runner's schema (Migrations/NNNN_name.sql) in order, each in a transaction, once.")

        @OptionGroup var databaseOptions: DatabaseOptions
        @Option(help: "The folder of migration files.") var migrations = "Migrations"

        func run() throws {
            guard FileManager.default.fileExists(atPath: migrations) else {
                throw ValidationError("\(migrations): no migrations folder here (run from odam's checkout or pass --migrations)")
            }
            let connection = try databaseOptions.connect()
            let applied = try Migrator(directory: migrations).migrate(connection)
            print(applied.isEmpty ? "schema up to date" : "applied " + applied.joined(separator: ", "))
        }
    }
}
