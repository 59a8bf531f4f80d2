import ArgumentParser
import Foundation
import Postgres

/// Where the runner's database is: `--database`, `ODAM_DATABASE_URL`, `DATABASE_URL`, libpq's own `PG*` variables, or
/// (for the single-machine commands only) odam's own embedded server.
struct DatabaseOptions: ParsableArguments {
    @Option(
        help:
            "A libpq connection string or postgres:// URL (default: ODAM_DATABASE_URL, else DATABASE_URL, else libpq's PG* variables, else odam's embedded server in .odam/postgres; workers and coordinators need one of the first four)."
    )
    var database: String?

    /// The configured database, or nil for the embedded one.
    var configured: String? { Self.configured(database: database, environment: ProcessInfo.processInfo.environment) }

    /// `database`, else `ODAM_DATABASE_URL`, else `DATABASE_URL`, else the empty string (libpq's defaults) when a
    /// variable of `ConnectionInfo.serverVariables` is set; nil when none names a server.
    static func configured(database: String?, environment: [String: String]) -> String? {
        if let database { return database }
        for name in ["ODAM_DATABASE_URL", "DATABASE_URL"] {
            if let value = environment[name], !value.isEmpty { return value }
        }
        return ConnectionInfo.serverVariables.contains { !(environment[$0] ?? "").isEmpty } ? "" : nil
    }

    /// The configured database for `command`, one of the distributed processes (worker, coordinator), which never start
    /// an embedded server: each machine's would be a database of its own, sharing no work with the others.
    func required(by command: String) throws -> String {
        guard let configured else {
            throw CommandFailure(
                "odam \(command) needs the job database: pass --database, or set ODAM_DATABASE_URL, DATABASE_URL or libpq's PG* variables (PGHOST, PGDATABASE, …). It never starts odam's embedded PostgreSQL: on one machine, `odam run DIR` starts it with its own workers and coordinator."
            )
        }
        return configured
    }

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
