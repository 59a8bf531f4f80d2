import CLibPQ
import Foundation

/// A failure reported by PostgreSQL or libpq: the SQLSTATE (when the server sent one), the message and its detail.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// The five-character SQLSTATE, for example `23505` (unique violation); nil for client-side failures such as an
    /// unreachable server.
    public var sqlState: String?
    public var message: String
    public var detail: String?
    /// What was being done (connecting to a host, running a statement).
    public var context: String

    /// Whether the connection itself failed (server unreachable, restarted or ending sessions) rather than the
    /// statement: the caller may reconnect and try again.
    public var isConnectionFailure: Bool {
        guard let sqlState else { return true }
        return sqlState.hasPrefix("08") || sqlState.hasPrefix("57P")
    }

    public var description: String {
        var text = "\(context): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; \(detail)" }
        return text
    }
}

/// Rows of a statement's result, as text (PostgreSQL's text format); nil is SQL NULL.
public struct PostgresRows: Sendable {
    public var columns: [String]
    public var rows: [[String?]]
    /// Rows a command changed (INSERT, UPDATE, DELETE, COPY), when it says.
    public var affected: Int?

    /// The value of `column` in row `row`.
    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }
}

/// One libpq connection, owned here and closed in `deinit`. Statements take their values only as bound parameters
/// (`$1`, `$2`, …), never spliced into the SQL text.
public final class PostgresConnection: @unchecked Sendable {
    // Not thread-safe: one connection serves one task at a time, as libpq's PGconn.
    private let handle: OpaquePointer
    /// The connection string without its password, for messages.
    public let target: String

    /// Connects with a libpq connection string (`host=… dbname=… user=…`) or URI; the password may come from the
    /// string, `PGPASSWORD` or `~/.pgpass`, and is never part of an error message.
    public init(_ connectionString: String) throws {
        target = Self.redacted(connectionString)
        guard let connection = PQconnectdb(connectionString) else {
            throw PostgresError(
                sqlState: nil, message: "libpq could not allocate a connection", detail: nil, context: "connecting to \(target)")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(connection)
            throw PostgresError(sqlState: nil, message: message, detail: nil, context: "connecting to \(target)")
        }
        // Notices ("relation already exists, skipping") are not errors; libpq would print them to stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
    }

    deinit { PQfinish(handle) }

    /// The connection string with any password replaced, as libpq parses it; a string libpq cannot parse is not
    /// shown at all (it might hold a password in a form no pattern foresees).
    static func redacted(_ text: String) -> String {
        ConnectionInfo(text)?.redacted ?? "(a connection string libpq cannot parse)"
    }

    /// Runs one statement with bound text parameters; returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresRows {
        let result = withParameterPointers(parameters) { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        return try Self.rows(of: result, connection: handle, context: "running \(Self.summary(sql))")
    }

    /// Runs SQL text of one or more statements without parameters (schema files), in one round trip.
    public func execute(_ sql: String) throws {
        _ = try Self.rows(of: PQexec(handle, sql), connection: handle, context: "running \(Self.summary(sql))")
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// `COPY … FROM STDIN` with rows of values (nil is NULL), sent in PostgreSQL's text format.
    @discardableResult
    public func copyIn(_ sql: String, rows: [[(any PostgresEncodable)?]]) throws -> Int {
        _ = try Self.rows(of: PQexec(handle, sql), connection: handle, context: "starting \(Self.summary(sql))", accepting: PGRES_COPY_IN)
        var buffer = ""
        func flush() throws {
            guard !buffer.isEmpty else { return }
            let sent = buffer.withCString { PQputCopyData(handle, $0, Int32(strlen($0))) }
            buffer = ""
            guard sent == 1 else { throw connectionError("sending COPY data") }
        }
        for row in rows {
            buffer += row.map { $0?.postgresText.map(Self.copyEscaped) ?? "\\N" }.joined(separator: "\t") + "\n"
            if buffer.utf8.count > 1 << 16 { try flush() }
        }
        try flush()
        guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError("ending COPY") }
        let result = try Self.rows(of: PQgetResult(handle), connection: handle, context: "finishing \(Self.summary(sql))")
        while let extra = PQgetResult(handle) { PQclear(extra) }
        return result.affected ?? rows.count
    }

    /// Escapes a value for COPY's text format.
    static func copyEscaped(_ value: String) -> String {
        // Most values (numbers, ordinary paths) need no escape: one byte scan instead of a rebuilt string.
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == 9 || $0 == 10 || $0 == 13 }) else { return value }
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Starts listening on a channel (a quoted identifier, so any name is safe).
    public func listen(_ channel: String) throws {
        try execute("LISTEN \"\(channel.replacingOccurrences(of: "\"", with: "\"\""))\"")
    }

    /// Waits up to `timeout` seconds for a notification on a channel this connection listens to; returns (channel,
    /// payload), or nil when none came.
    public func waitForNotification(timeout: Double) throws -> (channel: String, payload: String)? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            guard PQconsumeInput(handle) == 1 else { throw connectionError("reading notifications") }
            if let notification = PQnotifies(handle) {
                defer { PQfreemem(notification) }
                return (String(cString: notification.pointee.relname), String(cString: notification.pointee.extra))
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Int32(min(left, 1) * 1000))
        }
    }

    /// Whether the server connection is still usable.
    public var isOpen: Bool { PQstatus(handle) == CONNECTION_OK }

    func connectionError(_ doing: String) -> PostgresError {
        PostgresError(
            sqlState: nil, message: String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines),
            detail: nil, context: "\(doing) on \(target)")
    }

    /// The first line of a statement, shortened, for messages (values are parameters, so no secret is in it).
    static func summary(_ sql: String) -> String {
        let line = sql.split(separator: "\n").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        return line.count > 80 ? String(line.prefix(77)) + "..." : line
    }

    /// Reads and frees a result; throws the server's error with its SQLSTATE.
    static func rows(of result: OpaquePointer?, connection: OpaquePointer, context: String, accepting accepted: ExecStatusType? = nil)
        throws
        -> PostgresRows
    {
        guard let result else {
            throw PostgresError(
                sqlState: nil, message: String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines),
                detail: nil, context: context)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        if let accepted, status == accepted { return PostgresRows(columns: [], rows: [], affected: nil) }
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            func field(_ code: Int32) -> String? { PQresultErrorField(result, code).map { String(cString: $0) } }
            let primary = field(Int32(UInt8(ascii: "M"))) ?? String(cString: PQresultErrorMessage(result))
            throw PostgresError(
                sqlState: field(Int32(UInt8(ascii: "C"))), message: primary.trimmingCharacters(in: .whitespacesAndNewlines),
                detail: field(Int32(UInt8(ascii: "D"))), context: context)
        }
        let columnCount = Int(PQnfields(result)), rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let rows = (0..<rowCount).map { r in
            (0..<columnCount).map { c -> String? in
                PQgetisnull(result, Int32(r), Int32(c)) == 1 ? nil : String(cString: PQgetvalue(result, Int32(r), Int32(c)))
            }
        }
        let affected = Int(String(cString: PQcmdTuples(result)))
        return PostgresRows(columns: columns, rows: rows, affected: affected)
    }

    /// Calls `body` with C strings of the parameters; they live only for the call.
    func withParameterPointers<R>(_ parameters: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        if parameters.isEmpty { return body(nil) }
        var storage: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { for pointer in storage { free(pointer) } }
        return storage.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) { body($0) }
        }
    }
}
