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
