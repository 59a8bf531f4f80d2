import Foundation

/// A private PostgreSQL server that odam starts itself: `initdb` and `pg_ctl` of the system's PostgreSQL, a data
/// directory of its own, a Unix socket in that directory and no TCP port. Run as root, the server runs as the
/// `postgres` user (PostgreSQL refuses root).
public final class EmbeddedPostgres: @unchecked Sendable {
    public let dataDirectory: String
    public let socketDirectory: String
    public let user = "odam"
    let binaries: String
    let runAs: String?

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

    /// posix_spawn and waitpid, output to a file. Not Foundation's Process: it watches its child through a
    /// descriptor that the server pg_ctl starts would inherit, and would wait for the server to exit.
    static func spawnAndWait(_ command: [String], output: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let arguments = command.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, command[0], &actions, nil, arguments, environ)
        guard spawned == 0 else {
            throw PostgresError(
                sqlState: nil, message: "cannot start \(command[0]): \(String(cString: strerror(spawned)))", detail: nil,
                context: "embedded PostgreSQL")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, spelled out.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

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
                "-c listen_addresses='' -k \(socketDirectory) -c fsync=off -c max_connections=200", "start",
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
