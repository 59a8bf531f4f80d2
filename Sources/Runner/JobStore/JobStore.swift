import Foundation
import Postgres

/// Every statement the runner sends to PostgreSQL, behind methods that take and return records (``ShardClaim``,
/// ``ImageResult``, ``JobProgress``, …): enqueueing, the lease protocol of shards, the fenced commit of a shard's
/// results, the coordinator's rounds, progress and the report and export queries. Callers never see SQL or rows.
///
/// A store wraps one connection and is used by one thread at a time, as the connection.
public struct JobStore: Sendable {
    /// The connection every statement runs on.
    public let connection: PostgresConnection
    /// The lease timings claims and rescues use.
    public var leases: LeasePolicy

    /// The channel workers listen on for new or returned work.
    public static let workChannel = "odam_shards"

    public init(_ connection: PostgresConnection, leases: LeasePolicy = LeasePolicy()) {
        self.connection = connection
        self.leases = leases
    }

    /// Connects to `connectionString` (see ``PostgresConnection/init(_:)``).
    public init(connecting connectionString: String, leases: LeasePolicy = LeasePolicy()) throws {
        self.init(try PostgresConnection(connectionString), leases: leases)
    }

    /// Whether the connection is still usable.
    public var isOpen: Bool { connection.isOpen }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    public func transaction<R>(_ body: () throws -> R) throws -> R { try connection.transaction(body) }

    /// Wakes the workers listening on ``workChannel``.
    func notifyWorkers(_ payload: String) throws {
        try connection.query("SELECT pg_notify(\(Self.workChannel), \(payload))", purpose: "waking the workers")
    }

    /// Starts listening for new work on this connection.
    public func listenForWork() throws { try connection.listen(Self.workChannel) }

    /// Waits up to `timeout` seconds for a notification of new work; whether one came.
    public func waitForWork(timeout: Double) throws -> Bool { try connection.waitForNotification(timeout: timeout) != nil }

    /// The server's version string, for benchmark reports.
    public func serverVersion() throws -> String {
        try connection.query("SHOW server_version", purpose: "reading the server version").records[0].decode("server_version")
    }

    /// Runs `body` holding the session advisory lock `key`, released when it returns; other sessions asking for the
    /// same key wait.
    public func withAdvisoryLock<R>(_ key: Int, _ body: () throws -> R) throws -> R {
        try connection.query("SELECT pg_advisory_lock(\(key)::bigint)", purpose: "taking advisory lock \(key)")
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(\(key)::bigint)", purpose: "releasing advisory lock \(key)") }
        return try body()
    }

    /// Takes the session advisory lock `key` if it is free; whether this session holds it now.
    public func tryAdvisoryLock(_ key: Int) throws -> Bool {
        try connection.query("SELECT pg_try_advisory_lock(\(key)::bigint) AS held", purpose: "trying advisory lock \(key)")
            .records[0].decode("held")
    }
}

/// Rows for a multi-row INSERT: records that name each value's column next to the value, so that a column cannot be
/// paired with another's value.
protocol InsertableRecord {
    /// (column, value) pairs, the same columns in the same order for every record of a type.
    var columnValues: [(column: String, value: (any PostgresEncodable)?)] { get }
}

extension JobStore {
    /// Inserts records with one multi-row statement per thousand rows (one round trip instead of one per row); the
    /// values stay bound parameters. The table name is one of the store's own, never a user's.
    func insert<Record: InsertableRecord>(_ records: [Record], into table: StaticString) throws {
        guard let first = records.first else { return }
        let columns = first.columnValues.map(\.column)
        for start in stride(from: 0, to: records.count, by: 1000) {
            let chunk = records[start..<min(records.count, start + 1000)]
            var binds: [String?] = []
            binds.reserveCapacity(chunk.count * columns.count)
            var tuples: [String] = []
            for record in chunk {
                let pairs = record.columnValues
                precondition(pairs.map(\.column) == columns, "a \(Record.self) row with other columns")
                tuples.append(
                    "("
                        + pairs.map { pair in
                            binds.append(pair.value?.postgresText)
                            return "$\(binds.count)"
                        }.joined(separator: ", ") + ")")
            }
            try connection.query(
                PostgresQuery(
                    unsafeSQL: "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES " + tuples.joined(separator: ", "),
                    binds: binds),
                purpose: "recording \(chunk.count) rows of \(table)")
        }
    }
}
