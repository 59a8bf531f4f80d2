import Foundation
import Postgres
import ServiceTestSupport
import TestSupport
import Testing

@Suite(.serialized)
struct MigratorTests {
    static var repositoryMigrations: String { Repository.migrations }

    static func freshDatabase(_ name: String) throws -> PostgresConnection { try freshTestDatabase(name, migrated: false) }

    @Test func appliesOnceAndCommentsEveryTableAndColumn() throws {
        let db = try Self.freshDatabase("migrate_once")
        let migrator = Migrator(directory: Self.repositoryMigrations)
        let first = try migrator.migrate(db)
        #expect(first == (try migrator.migrations().map(\.name)) && !first.isEmpty)
        #expect(try migrator.migrate(db).isEmpty, "a second run applies nothing")
        // \d+ shows a comment on every table, view and column of odam's schema.
        let uncommented = try db.query(
            """
            SELECT c.relname || coalesce('.' || a.attname, '') AS item
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')
              AND obj_description(c.oid, 'pg_class') IS NULL OR (a.attnum IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL
              AND n.nspname = 'public')
            """
        ).rows.compactMap { $0[0] }
        #expect(uncommented.isEmpty, "without comments: \(uncommented)")
    }

    @Test func concurrentMigrationsApplyEachFileOnce() async throws {
        _ = try Self.freshDatabase("migrate_race")
        let connectionString = try PostgresConnectionTests.server().connectionString(database: "migrate_race")
        let directory = Self.repositoryMigrations
        let applied = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask { try Migrator(directory: directory).migrate(try PostgresConnection(connectionString)) }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(applied.sorted() == (try Migrator(directory: directory).migrations().map(\.name)).sorted())
    }

    @Test func aChangedAppliedFileIsRefused() throws {
        let db = try Self.freshDatabase("migrate_changed")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("odam-migrations-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "CREATE TABLE t (a int);".write(toFile: directory + "/0001_t.sql", atomically: true, encoding: .utf8)
        try Migrator(directory: directory).migrate(db)
        try "CREATE TABLE t (a bigint);".write(toFile: directory + "/0001_t.sql", atomically: true, encoding: .utf8)
        #expect {
            try Migrator(directory: directory).migrate(db)
        } throws: { "\($0)".contains("0001_t.sql changed after it was applied") }
        // A failing migration leaves nothing behind.
        try "CREATE TABLE t (a int);".write(toFile: directory + "/0001_t.sql", atomically: true, encoding: .utf8)
        try "CREATE TABLE u (a int); SELECT no_such_function();".write(toFile: directory + "/0002_u.sql", atomically: true, encoding: .utf8)
        #expect(throws: PostgresError.self) { try Migrator(directory: directory).migrate(db) }
        #expect(try db.query("SELECT to_regclass('u') AS u")[0, "u"] == nil)
    }
}
