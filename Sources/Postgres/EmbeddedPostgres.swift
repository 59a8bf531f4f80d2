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
    /// TCP addresses to listen on besides the socket (none by default), and the networks (CIDR) whose clients are
    /// trusted without a password: for a server that other hosts reach (the multi-host tests).
    public var listenAddresses: [String] = []
    public var trustedNetworks: [String] = []
    /// Prepended to every PostgreSQL program's command (for example `ip netns exec NAME`: the server of another
    /// network namespace).
    public var commandPrefix: [String] = []

    /// The connection string of the server's `postgres` database (or `database`).
    public func connectionString(database: String = "postgres") -> String {
        ConnectionInfo.render([("host", socketDirectory), ("dbname", database), ("user", user)])
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

    /// Runs a PostgreSQL program (as `postgres` when root) with the data directory in `PGDATA`; throws with its
    /// output when it fails. `output` keeps the output (and that of any server it starts) in a file of the caller's.
    func run(_ program: String, _ arguments: [String], output: String? = nil) throws {
        let command =
            commandPrefix + (runAs.map { ["/usr/sbin/runuser", "-u", $0, "--", "\(binaries)/\(program)"] } ?? ["\(binaries)/\(program)"])
        let log = output ?? NSTemporaryDirectory() + "odam-\(program)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { if output == nil { try? FileManager.default.removeItem(atPath: log) } }
        let status = try Self.spawnAndWait(command + arguments, environment: ["PGDATA": dataDirectory], output: log)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw PostgresError(
                sqlState: nil, message: "\(program) exited with status \(status)",
                detail: text.trimmingCharacters(in: .whitespacesAndNewlines),
                context: "embedded PostgreSQL in \(dataDirectory)")
        }
    }

    static func spawnAndWait(_ command: [String], environment: [String: String] = [:], output: String) throws -> Int32 {
        do { return try ChildProcess.run(command, environment: environment, output: output) } catch {
            throw PostgresError(sqlState: nil, message: "\(error)", detail: nil, context: "embedded PostgreSQL")
        }
    }

    /// The path of one of the PostgreSQL programs the server uses (`psql`, `pg_dump`).
    public func programPath(_ name: String) -> String { binaries + "/" + name }

    public var isInitialized: Bool { FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") }

    /// The server's process id from `postmaster.pid`, when that process is alive and is a PostgreSQL server. A pid
    /// file left by a killed server (or a power loss) names a dead process, or after a reboot someone else's.
    public var serverProcess: pid_t? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
            let first = text.split(separator: "\n").first, let pid = pid_t(first.trimmingCharacters(in: .whitespaces)), pid > 0
        else { return nil }
        guard kill(pid, 0) == 0 || errno == EPERM else { return nil }
        let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.map { $0.hasPrefix("postgres") } ?? true ? pid : nil
    }

    public var isRunning: Bool { serverProcess != nil }

    /// Creates the cluster if needed and starts the server; waits until it accepts connections. A stale pid file is
    /// removed first. `pg_ctl start` runs the server through `/bin/sh` with `-D`, `-l` and `-o` inside double quotes,
    /// so none of them is used: the data directory goes in `PGDATA`, the settings into `odam.conf` (included by
    /// postgresql.conf), the log through an inherited descriptor. A folder named `x$(id)` or `a b` is a path here,
    /// never a command.
    public func start() throws {
        let manager = FileManager.default
        if !isInitialized {
            // The parents stay traversable (the server may run as another user); the data directory is private.
            try manager.createDirectory(atPath: (dataDirectory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try manager.createDirectory(atPath: dataDirectory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            try chownForServer()
            try run("initdb", ["-U", user, "-A", "trust", "-E", "UTF8", "--no-sync", "--locale", "C"])
        }
        guard !isRunning else { return }
        for stale in ["/postmaster.pid", "/.s.PGSQL.5432.lock", "/.s.PGSQL.5432"] where manager.fileExists(atPath: dataDirectory + stale) {
            try? manager.removeItem(atPath: dataDirectory + stale)
        }
        try writeSettings()
        try run("pg_ctl", ["-w", "-t", "60", "start"], output: dataDirectory + "/server.log")
    }

    /// Writes odam's settings to `odam.conf` and makes sure postgresql.conf includes it.
    func writeSettings() throws {
        func quoted(_ value: String) -> String {
            "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
        }
        let settings = [
            "listen_addresses = \(quoted(listenAddresses.joined(separator: ",")))", "unix_socket_directories = \(quoted(socketDirectory))",
            "max_connections = 200", "fsync = \(durable ? "on" : "off")",
        ]
        try (settings.joined(separator: "\n") + "\n").write(toFile: dataDirectory + "/odam.conf", atomically: true, encoding: .utf8)
        let main = dataDirectory + "/postgresql.conf"
        let text = (try? String(contentsOfFile: main, encoding: .utf8)) ?? ""
        if !text.contains("include_if_exists = 'odam.conf'") {
            try (text + "\ninclude_if_exists = 'odam.conf'\n").write(toFile: main, atomically: true, encoding: .utf8)
        }
        if !trustedNetworks.isEmpty {
            let hba = dataDirectory + "/pg_hba.conf"
            var rules = (try? String(contentsOfFile: hba, encoding: .utf8)) ?? ""
            for network in trustedNetworks where !rules.contains("host all all \(network) trust") {
                rules += "host all all \(network) trust\n"
            }
            try rules.write(toFile: hba, atomically: true, encoding: .utf8)
        }
        // Only the files written here: a recursive chown of a large data directory at every start would be slow.
        try chownForServer([dataDirectory + "/odam.conf", main] + (trustedNetworks.isEmpty ? [] : [dataDirectory + "/pg_hba.conf"]))
    }

    /// Stops the server (fast shutdown: sessions are ended, the data is kept).
    public func stop() throws {
        guard isRunning else { return }
        try run("pg_ctl", ["-m", "fast", "-w", "stop"])
    }

    /// The server's files (by default the whole data directory, else just `paths`) belong to the user that runs it.
    func chownForServer(_ paths: [String]? = nil) throws {
        guard let runAs else { return }
        let log = NSTemporaryDirectory() + "odam-chown-\(getpid()).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let targets = paths.map { ["\(runAs):\(runAs)"] + $0 } ?? ["-R", "\(runAs):\(runAs)", dataDirectory]
        guard try Self.spawnAndWait(["/bin/chown"] + targets, output: log) == 0 else {
            throw PostgresError(
                sqlState: nil, message: "cannot give \(dataDirectory) to the \(runAs) user", detail: nil, context: "embedded PostgreSQL")
        }
    }
}

/// One command's use of the embedded server, so that commands in one folder share it and never stop it under each
/// other. Each holder keeps a shared `flock` on `<data>.users` while it uses the server; start and stop decisions are
/// taken under an exclusive `flock` on `<data>.lock`. The last holder to leave stops the server. The kernel drops
/// a killed process's locks, so a SIGKILLed command never leaves a count behind.
public final class EmbeddedPostgresLease {
    public let server: EmbeddedPostgres
    private let usersDescriptor: Int32
    private var released = false

    /// Starts the server if needed (creating it on first use) and registers this process as one of its users.
    public init(_ server: EmbeddedPostgres) throws {
        self.server = server
        try FileManager.default.createDirectory(
            atPath: (server.dataDirectory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let gate = try Self.openLockFile(server.dataDirectory + ".lock")
        defer { close(gate) }
        flock(gate, LOCK_EX)
        try server.start()
        usersDescriptor = try Self.openLockFile(server.dataDirectory + ".users")
        flock(usersDescriptor, LOCK_SH)
    }

    /// Leaves the server; stops it when no other process uses it.
    public func release() {
        guard !released else { return }
        released = true
        guard let gate = try? Self.openLockFile(server.dataDirectory + ".lock") else {
            close(usersDescriptor)
            return
        }
        defer { close(gate) }
        flock(gate, LOCK_EX)
        close(usersDescriptor)
        guard let probe = try? Self.openLockFile(server.dataDirectory + ".users") else { return }
        defer { close(probe) }
        if flock(probe, LOCK_EX | LOCK_NB) == 0 { try? server.stop() }
    }

    deinit { release() }

    static func openLockFile(_ path: String) throws -> Int32 {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw PostgresError(
                sqlState: nil, message: "cannot open \(path): \(String(cString: strerror(errno)))", detail: nil,
                context: "sharing the embedded PostgreSQL")
        }
        return descriptor
    }
}
