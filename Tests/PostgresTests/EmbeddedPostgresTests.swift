import Foundation
import Postgres
import Testing

/// odam's own PostgreSQL under real use, with real server processes: a folder name a shell would run, a postmaster
/// killed with its pid file left behind, and two commands sharing the server.
struct EmbeddedPostgresTests {
    @Test func survivesHostileFolderNamesStalePidFilesAndSharing() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("odam-embedded-\(getpid())").path
        // A shell would run the $(...) and split at the space; both must stay part of a path.
        let folder = base + "/x$(touch pwned) a b"
        try? FileManager.default.removeItem(atPath: base)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // The server runs as the postgres user when the tests run as root: the folders must be traversable.
        chmod(base, 0o755)
        chmod(folder, 0o755)
        let server = try EmbeddedPostgres(dataDirectory: folder + "/postgres")
        server.durable = false
        defer {
            try? server.stop()
            try? FileManager.default.removeItem(atPath: base)
        }

        // Two users share the server: the first to leave does not stop it, the last does.
        let first = try EmbeddedPostgresLease(server)
        let second = try EmbeddedPostgresLease(server)
        #expect(server.isRunning)
        #expect(try PostgresConnection(server.connectionString()).query("SELECT 1").rows == [["1"]])
        first.release()
        #expect(server.isRunning, "the first user to leave stopped the server under the second")
        #expect(try PostgresConnection(server.connectionString()).query("SELECT 2").rows == [["2"]])
        second.release()
        #expect(!server.isRunning, "the last user to leave leaves the server running")
        #expect(!FileManager.default.fileExists(atPath: folder + "/pwned") && !FileManager.default.fileExists(atPath: "pwned"))

        // The postmaster killed: its pid file stays, names a dead process, and must not lock odam out.
        let lease = try EmbeddedPostgresLease(server)
        let pid = try #require(server.serverProcess)
        kill(pid, SIGKILL)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
        #expect(FileManager.default.fileExists(atPath: server.dataDirectory + "/postmaster.pid"))
        #expect(!server.isRunning)
        lease.release()
        let again = try EmbeddedPostgresLease(server)
        #expect(try PostgresConnection(server.connectionString()).query("SELECT 3").rows == [["3"]])
        again.release()
        #expect(!server.isRunning)
    }

    /// The password never leaves libpq's parse: quoted, with spaces, with `@`, in URIs.
    @Test(arguments: [
        ("host=/tmp dbname=x user=u password='Passw0rd with space'", "Passw0rd with space"),
        ("postgresql://u:p%40ss@db.example.org:5432/odam", "p@ss"),
        // libpq reads the first `@` as the end of the password: "weird" is what it would send, and what is hidden.
        ("postgresql://u:weird@rest@db.example.org/odam", "weird"),
        ("host=/tmp password=plain dbname=x", "plain"),
    ])
    func redactionUsesLibpqsParse(text: String, password: String) throws {
        let info = try #require(ConnectionInfo(text))
        #expect(info.password == password)
        #expect(!info.redacted.contains(password) && info.redacted.contains("password='***'"))
        #expect(!info.withoutPassword.contains(password) && !info.withoutPassword.contains("password"))
        #expect(ConnectionInfo(info.withoutPassword)?.options.count == info.options.count - 1)
    }
}
