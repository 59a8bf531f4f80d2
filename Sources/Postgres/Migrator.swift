import Digest
import Foundation

/// Applies `Migrations/NNNN_name.sql` in order, each in its own transaction, recording its SHA-256; an applied file
/// that has changed is refused. Several processes may migrate at once: a session advisory lock lets one at a time
/// in, and the others then find the work done.
public struct Migrator: Sendable {
    public struct Migration: Sendable, Equatable {
        public var version: Int
        public var name: String
        public var sql: String
        public var checksum: String
    }

    public let directory: String
    /// The advisory lock key (any fixed number, shared by every odam process).
    static let lockKey = "7243591082731"

    public init(directory: String) { self.directory = directory }

    /// The migration files, in version order.
    public func migrations() throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        var seen: [Int: String] = [:]
        return try names.map { name in
            guard let version = Int(name.prefix { $0.isNumber }), name.first?.isNumber == true else {
                throw PostgresError(
                    sqlState: nil, message: "\(name) does not start with a version number (NNNN_name.sql)", detail: nil,
                    context: "reading migrations in \(directory)")
            }
            if let other = seen[version] {
                throw PostgresError(
                    sqlState: nil, message: "\(name) and \(other) share version \(version)", detail: nil,
                    context: "reading migrations in \(directory)")
            }
            seen[version] = name
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                throw PostgresError(
                    sqlState: nil, message: "cannot read \(name)", detail: nil, context: "reading migrations in \(directory)")
            }
            return Migration(version: version, name: name, sql: String(decoding: data, as: UTF8.self), checksum: SHA256.hex(data))
        }
    }

    /// Applies what is missing; returns the names applied now.
    @discardableResult
    public func migrate(_ connection: PostgresConnection) throws -> [String] {
        let pending = try migrations()
        try connection.query("SELECT pg_advisory_lock($1::bigint)", [Self.lockKey])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1::bigint)", [Self.lockKey]) }
        try connection.execute(
            """
            CREATE TABLE IF NOT EXISTS odam_migrations (
                version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
            COMMENT ON TABLE odam_migrations IS 'Schema files applied by odam migrate, with the SHA-256 of each as applied.';
            COMMENT ON COLUMN odam_migrations.version IS 'The number the file name starts with.';
            COMMENT ON COLUMN odam_migrations.name IS 'The file name.';
            COMMENT ON COLUMN odam_migrations.checksum IS 'SHA-256 of the file as applied, hex; a changed file is refused.';
            COMMENT ON COLUMN odam_migrations.applied_at IS 'When it was applied.';
            """)
        let applied = try connection.query("SELECT version, name, checksum FROM odam_migrations ORDER BY version").rows
        var byVersion: [Int: (name: String, checksum: String)] = [:]
        for row in applied { byVersion[Int(row[0]!)!] = (row[1]!, row[2]!) }
        var done: [String] = []
        for migration in pending {
            if let existing = byVersion[migration.version] {
                guard existing.checksum == migration.checksum else {
                    throw PostgresError(
                        sqlState: nil,
                        message:
                            "\(migration.name) changed after it was applied (applied SHA-256 \(existing.checksum.prefix(12))…, now \(migration.checksum.prefix(12))…)",
                        detail: "add a new migration instead of editing an applied one", context: "migrating \(connection.target)")
                }
                continue
            }
            try connection.transaction {
                try connection.execute(migration.sql)
                try connection.query(
                    "INSERT INTO odam_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [String(migration.version), migration.name, migration.checksum])
            }
            done.append(migration.name)
        }
        return done
    }
}
