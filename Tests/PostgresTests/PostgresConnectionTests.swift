import Foundation
import Postgres
import ServiceTestSupport
import TestSupport
import Testing

/// libpq through odam's wrapper, against a real PostgreSQL that the tests start as odam does (embedded, Unix socket).
@Suite(.serialized)
struct PostgresConnectionTests {
    static func server() throws -> EmbeddedPostgres { try testPostgres() }

    static func connect() throws -> PostgresConnection { try PostgresConnection(Self.server().connectionString()) }

    @Test func boundParametersKeepHostileTextAsData() throws {
        let db = try Self.connect()
        try db.execute("DROP TABLE IF EXISTS files; CREATE TABLE files (id serial PRIMARY KEY, name text UNIQUE, size bigint)")
        let hostile = "it's; DROP TABLE files;--.jpg"
        try db.query("INSERT INTO files (name, size) VALUES ($1, $2)", [hostile, "42"])
        try db.query("INSERT INTO files (name, size) VALUES ($1, $2)", ["plain.png", nil])
        let rows = try db.query("SELECT name, size FROM files ORDER BY id")
        #expect(rows.rows == [[hostile, "42"], ["plain.png", nil]])
        #expect(rows[0, "name"] == hostile)
    }

    @Test func errorsCarrySQLStateAndMessage() throws {
        let db = try Self.connect()
        try db.execute("DROP TABLE IF EXISTS uniq; CREATE TABLE uniq (k text PRIMARY KEY)")
        try db.query("INSERT INTO uniq VALUES ($1)", ["a"])
        #expect {
            try db.query("INSERT INTO uniq VALUES ($1)", ["a"])
        } throws: { error in
            let e = error as! PostgresError
            return e.sqlState == "23505" && e.message.contains("duplicate key") && e.detail?.contains("(k)=(a)") == true
        }
        #expect {
            try db.query("SELECT * FROM no_such_table")
        } throws: { ($0 as! PostgresError).sqlState == "42P01" }
        // The connection still works after errors.
        #expect(try db.query("SELECT 1 AS one")[0, "one"] == "1")
    }

    @Test func transactionsRollBackOnError() throws {
        let db = try Self.connect()
        try db.execute("DROP TABLE IF EXISTS ledger; CREATE TABLE ledger (v int)")
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try db.transaction {
                try db.query("INSERT INTO ledger VALUES ($1)", ["1"])
                throw Stop()
            }
        }
        try db.transaction { try db.query("INSERT INTO ledger VALUES ($1)", ["2"]) }
        #expect(try db.query("SELECT v FROM ledger").rows == [["2"]])
    }

    @Test func copyInWritesRowsWithSpecialCharacters() throws {
        let db = try Self.connect()
        try db.execute("DROP TABLE IF EXISTS copied; CREATE TABLE copied (a text, b text)")
        let rows: [[String?]] = (0..<1000).map { ["row \($0)", $0 % 3 == 0 ? nil : "tab\there\\ newline\n end"] }
        #expect(try db.copyIn("COPY copied (a, b) FROM STDIN", rows: rows.map { $0.map { $0 as (any PostgresEncodable)? } }) == 1000)
        let back = try db.query("SELECT a, b FROM copied ORDER BY length(a), a")
        #expect(back.rows.count == 1000)
        #expect(Set(back.rows.map { $0[1] }) == Set(rows.map { $0[1] }))
    }

    @Test func listenAndNotify() throws {
        let listener = try Self.connect(), sender = try Self.connect()
        try listener.listen("odam jobs")
        #expect(try listener.waitForNotification(timeout: 0.1) == nil)
        try sender.query("SELECT pg_notify($1, $2)", ["odam jobs", "job 7"])
        let note = try listener.waitForNotification(timeout: 5)
        #expect(note?.channel == "odam jobs" && note?.payload == "job 7")
    }

    @Test func unreachableServerIsNamedWithoutItsPassword() {
        #expect {
            try PostgresConnection("host=/nonexistent-socket-dir dbname=x user=odam password=s3cret connect_timeout=2")
        } throws: { error in
            let text = "\(error)"
            return text.contains("/nonexistent-socket-dir") && !text.contains("s3cret") && text.contains("password='***'")
        }
    }
}
