import Foundation
import Postgres
import ServiceTestSupport
import TestSupport
import Testing

/// Where odam finds its database: `DATABASE_URL` and libpq's `PG*` variables as the ecosystem sets them, and never
/// an embedded server for the distributed processes.
@Suite(.serialized) struct DatabaseConventionTests {
    /// A scratch folder in which an embedded server would leave `.odam/postgres`.
    static func scratch(_ name: String) throws -> String {
        let folder = NSTemporaryDirectory() + "odam-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test(arguments: [["worker", "--exit-when-idle"], ["coordinator", "--exit-when-done"]])
    func distributedProcessesRefuseToRunWithoutADatabase(arguments: [String]) throws {
        let folder = try Self.scratch("no-database")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try OdamBinary.run(arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.stderr.contains("odam \(arguments[0]) needs the job database"), "\(run.stderr)")
        #expect(run.stderr.contains("DATABASE_URL") && run.stderr.contains("PGHOST"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/.odam/postgres"), "no embedded server was started")
    }

    /// Whether `database` on the test server has odam's schema.
    static func isMigrated(_ database: String) throws -> Bool {
        let connection = try PostgresConnection(try testPostgres().connectionString(database: database))
        return try connection.query("SELECT to_regclass('odam_migrations') IS NOT NULL AS migrated", []).rows[0][0] == "t"
    }

    @Test func libpqVariablesAndDatabaseURLNameTheDatabase() throws {
        let server = try testPostgres()
        let folder = try Self.scratch("database-variables")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let byVariables = "odam_pg_variables", byURL = "odam_database_url"
        _ = try freshTestDatabase(byVariables, migrated: false)
        _ = try freshTestDatabase(byURL, migrated: false)

        let migrations = ["migrate", "--migrations", Repository.migrations]
        let variables = try OdamBinary.run(
            migrations, in: folder, environment: ["PGHOST": server.socketDirectory, "PGDATABASE": byVariables, "PGUSER": server.user])
        #expect(variables.status == 0, "\(variables.stderr)")
        #expect(try Self.isMigrated(byVariables))
        #expect(try !Self.isMigrated(byURL))

        let url = try OdamBinary.run(migrations, in: folder, environment: ["DATABASE_URL": server.connectionString(database: byURL)])
        #expect(url.status == 0, "\(url.stderr)")
        #expect(try Self.isMigrated(byURL))
        #expect(!FileManager.default.fileExists(atPath: folder + "/.odam/postgres"), "no embedded server was started")

        // ODAM_DATABASE_URL wins over both.
        let named = try OdamBinary.run(
            ["status"], in: folder,
            environment: ["ODAM_DATABASE_URL": server.connectionString(database: byURL), "DATABASE_URL": "host=/nonexistent dbname=x"])
        #expect(named.status == 0, "\(named.stderr)")
    }
}
