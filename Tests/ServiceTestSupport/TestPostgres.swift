import Foundation
public import Postgres
import TestSupport

/// The PostgreSQL server of the tests, started once per test process as odam starts its embedded one (by the first
/// test that asks), and stopped (its folder removed) when the process exits. Throws, naming what is missing, when
/// PostgreSQL is not installed or does not start; every test that needs it then fails with that reason.
public func testPostgres() throws -> EmbeddedPostgres { try testPostgresServer.get() }

private let testPostgresServer: Result<EmbeddedPostgres, TestDependencyError> = {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("odam-pg-\(getpid())").path
    do {
        let server = try EmbeddedPostgres(dataDirectory: directory)
        server.durable = false
        try server.start()
        atexit {
            guard case .success(let server) = testPostgresServer else { return }
            try? server.stop()
            try? FileManager.default.removeItem(atPath: server.dataDirectory)
        }
        return .success(server)
    } catch {
        try? FileManager.default.removeItem(atPath: directory)
        return .failure(
            TestDependencyError("the tests' PostgreSQL server did not start: \(error) (install PostgreSQL with `Tools/setup`)"))
    }
}()

/// A new, empty database on ``testPostgres`` (dropped first if a test left it), with odam's schema when `migrated`:
/// the one way tests make a database.
public func freshTestDatabase(_ name: String, migrated: Bool = true, migrations: String = Repository.migrations) throws
    -> PostgresConnection
{
    let server = try testPostgres()
    let admin = try PostgresConnection(server.connectionString())
    try admin.execute("DROP DATABASE IF EXISTS \(name)")
    try admin.execute("CREATE DATABASE \(name)")
    let db = try PostgresConnection(server.connectionString(database: name))
    if migrated { try Migrator(directory: migrations).migrate(db) }
    return db
}
