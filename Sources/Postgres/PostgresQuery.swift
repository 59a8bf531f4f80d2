import Foundation

/// A value that can be sent as a bound parameter, in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    /// The parameter's text; nil is SQL NULL.
    var postgresText: String? { get }
}

/// A value that can be read from a column in PostgreSQL's text format.
public protocol PostgresDecodable {
    init?(postgresText: String)
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self }
    public init?(postgresText: String) { self = postgresText }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Float: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self ? "true" : "false" }
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Date: PostgresEncodable {
    /// Seconds since 1970, for `to_timestamp($n)`.
    public var postgresText: String? { String(timeIntervalSince1970) }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}

/// A statement whose interpolated values become bound parameters (`$1`, `$2`, …), never SQL text, as postgres-nio's
/// `PostgresQuery`: `"SELECT id FROM shards WHERE job_id = \(job) AND state = \(state)"`.
public struct PostgresQuery: ExpressibleByStringInterpolation, Sendable, CustomStringConvertible {
    public var sql: String
    public var binds: [String?]

    public init(stringLiteral value: String) {
        sql = value
        binds = []
    }

    /// A statement built from SQL text and its parameters by the caller (multi-row inserts); the text must not contain
    /// any value, only the parameter markers (`$1`, `$2`, …) that `binds` fill.
    public init(unsafeSQL sql: String, binds: [String?]) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    public var description: String { sql }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + 3 * interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) { sql += literal }

        /// A fragment of SQL text without values of its own (a column list shared by several statements).
        public mutating func appendInterpolation(fragment: PostgresQuery) {
            precondition(fragment.binds.isEmpty, "a fragment with bound values")
            sql += fragment.sql
        }

        /// A value, sent as the next bound parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        /// A value or NULL, sent as the next bound parameter.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(value?.postgresText ?? nil)
            sql += "$\(binds.count)"
        }
    }
}

/// One row of a result, read by column name.
public struct PostgresRow: Sendable {
    public let columns: [String]
    public let values: [String?]

    /// The value of `column` as `T`; throws naming the column when it is missing, NULL or not a `T`.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let value = try decodeIfPresent(column, as: type) else {
            throw PostgresError(sqlState: nil, message: "column \(column) is NULL", detail: nil, context: "reading a row")
        }
        return value
    }

    /// The value of `column` as `T`, or nil when it is NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
        guard let index = columns.firstIndex(of: column) else {
            throw PostgresError(
                sqlState: nil, message: "no column \(column) (the row has \(columns.joined(separator: ", ")))", detail: nil,
                context: "reading a row")
        }
        guard let text = values[index] else { return nil }
        guard let value = T(postgresText: text) else {
            throw PostgresError(
                sqlState: nil, message: "column \(column) holds '\(text)', not a \(T.self)", detail: nil, context: "reading a row")
        }
        return value
    }
}

extension PostgresRows {
    /// The rows, each readable by column name.
    public var records: [PostgresRow] { rows.map { PostgresRow(columns: columns, values: $0) } }
}

extension PostgresConnection {
    /// Runs a statement whose interpolated values are bound parameters; errors name `purpose`.
    @discardableResult
    public func query(_ query: PostgresQuery, purpose: String) throws -> PostgresRows {
        do {
            return try self.query(query.sql, query.binds)
        } catch var error as PostgresError {
            error.context = purpose + " (" + error.context + ")"
            throw error
        }
    }
}
