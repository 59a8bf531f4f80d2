import Foundation
import Processes

/// A private PostgreSQL server that odam starts itself: `initdb` and `pg_ctl` of the system's PostgreSQL, a data
/// directory of its own, a Unix socket in that directory and no TCP port. Run as root, the server runs as the
/// `postgres` user (PostgreSQL refuses root).
public final class EmbeddedPostgres: @unchecked Sendable {
    public let dataDirectory: String
    public let socketDirectory: String
    public let user = "odam"
    let binaries: String
    let runAs: String?
    /// Whether the server syncs its writes to disk (off only for throwaway test servers).
    public var durable = true

    /// The connection string of the server's `postgres` database (or `database`).
    public func connectionString(database: String = "postgres") -> String {
        "host=\(socketDirectory) dbname=\(database) user=\(user)"
    }

    /// Prepares (but does not start) a server in `dataDirectory`; `binaries` defaults to the newest
    /// `/usr/lib/postgresql/*/bin` with `initdb`, or the folder of `initdb` on the PATH.
    public init(dataDirectory: String, binaries: String? = nil) throws {
        self.dataDirectory = (dataDirectory as NSString).standardizingPath
        socketDirectory = self.dataDirectory
        guard let found = binaries ?? Self.findBinaries() else {
            throw PostgresError(
                sqlState: nil, message: "no initdb found (install PostgreSQL: apt-get install postgresql)", detail: nil,
                context: "starting the embedded PostgreSQL")
        }
        self.binaries = found
        runAs = geteuid() == 0 ? "postgres" : nil
    }

    static func findBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(folder)/initdb") {
            return String(folder)
        }
        return nil
    }

    /// Runs a PostgreSQL program (as `postgres` when root); throws with its output when it fails.
    func run(_ program: String, _ arguments: [String]) throws {
        let command = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--", "\(binaries)/\(program)"] } ?? ["\(binaries)/\(program)"]
        let log = NSTemporaryDirectory() + "odam-\(program)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = try Self.spawnAndWait(command + arguments, output: log)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw PostgresError(
                sqlState: nil, message: "\(program) exited with status \(status)",
                detail: text.trimmingCharacters(in: .whitespacesAndNewlines),
                context: "embedded PostgreSQL in \(dataDirectory)")
        }
    }

    static func spawnAndWait(_ command: [String], output: String) throws -> Int32 {
        do { return try ChildProcess.run(command, output: output) } catch {
            throw PostgresError(sqlState: nil, message: "\(error)", detail: nil, context: "embedded PostgreSQL")
        }
    }

    /// The path of one of the PostgreSQL programs the server uses (`psql`, `pg_dump`).
    public func programPath(_ name: String) -> String { binaries + "/" + name }

    public var isInitialized: Bool { FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") }

    public var isRunning: Bool { FileManager.default.fileExists(atPath: dataDirectory + "/postmaster.pid") }

    /// Creates the cluster if needed and starts the server; waits until it accepts connections.
    public func start() throws {
        let manager = FileManager.default
        if !isInitialized {
            // The parents stay traversable (the server may run as another user); the data directory is private.
            try manager.createDirectory(atPath: (dataDirectory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try manager.createDirectory(atPath: dataDirectory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            try chownForServer()
            try run("initdb", ["-D", dataDirectory, "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync", "--locale", "C"])
        }
        guard !isRunning else { return }
        try run(
            "pg_ctl",
            [
                "-D", dataDirectory, "-l", dataDirectory + "/server.log", "-w", "-t", "60", "-o",
                "-c listen_addresses='' -k \(socketDirectory) -c max_connections=200" + (durable ? "" : " -c fsync=off"), "start",
            ])
    }

    /// Stops the server (fast shutdown: sessions are ended, the data is kept).
    public func stop() throws {
        guard isRunning else { return }
        try run("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
    }

    /// The server's files belong to the user that runs it.
    func chownForServer() throws {
        guard let runAs else { return }
        let log = NSTemporaryDirectory() + "odam-chown-\(getpid()).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        guard try Self.spawnAndWait(["/bin/chown", "-R", "\(runAs):\(runAs)", dataDirectory], output: log) == 0 else {
            throw PostgresError(
                sqlState: nil, message: "cannot give \(dataDirectory) to the \(runAs) user", detail: nil, context: "embedded PostgreSQL")
        }
    }
}
