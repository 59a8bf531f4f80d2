import Foundation
import Postgres
import Processes
import ServiceTestSupport
import Synthesis
import TestSupport
import Testing

/// odam's processes for the distributed tests: the `odam` binary next to the test bundle (the README's test command
/// builds it first), started as children with their output in log files.
struct RunnerCluster {
    let root: String
    let connectionString: String
    let environment: [String: String]

    static var odam: String { OdamBinary.path }
    static var migrations: String { Repository.migrations }

    /// A scratch folder and a fresh, migrated database on the shared test server.
    init(name: String, environment: [String: String] = [:]) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)
        _ = try freshTestDatabase(name)
        connectionString = try testPostgres().connectionString(database: name)
        self.environment = environment
    }

    init(root: String, connectionString: String, environment: [String: String]) {
        self.root = root
        self.connectionString = connectionString
        self.environment = environment
    }

    func connect() throws -> PostgresConnection { try PostgresConnection(connectionString) }

    /// Starts `odam ARGUMENTS` on the cluster's database (`ODAM_DATABASE_URL`) with its output in `logs/LOG.log`.
    func start(_ arguments: [String], log: String, environment extra: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(
            [Self.odam] + arguments, environment: environment.merging(extra) { $1 }.merging(["ODAM_DATABASE_URL": connectionString]) { $1 },
            output: logPath(log))
    }

    func logPath(_ log: String) -> String { root + "/logs/" + log + ".log" }

    func logText(_ log: String) -> String { (try? String(contentsOfFile: logPath(log), encoding: .utf8)) ?? "" }

    /// A worker that exits when no work is left, with fast heartbeats.
    func worker(_ log: String, environment extra: [String: String] = [:]) throws -> ChildProcess {
        try start(
            ["worker", "--threads", "1", "--exit-when-idle", "--heartbeat-seconds", "1", "--poll-seconds", "1"], log: log,
            environment: extra)
    }

    /// A coordinator that declares a worker dead after 3 s of silence and exits when every job has finished.
    func coordinator(_ log: String = "coordinator") throws -> ChildProcess {
        try start(["coordinator", "--dead-after", "3", "--tick-seconds", "0.5", "--exit-when-done"], log: log)
    }

    /// Enqueues `folder` through `odam enqueue`; fails the test with its output when it fails.
    func enqueue(_ folder: String, arguments: [String] = []) throws {
        let status = try start(["enqueue", folder] + arguments, log: "enqueue").wait()
        #expect(status == 0, "odam enqueue failed: \(logText("enqueue"))")
    }

    /// `count` synthetic scenes in `folder/synthetic/images`.
    static func synthetic(_ folder: String, count: Int, seed: UInt64) throws {
        _ = try SyntheticDataset.write(directory: folder + "/synthetic", count: count, seed: seed, generator: SceneGenerator())
    }

    /// Waits until `condition` holds; false after `timeout` seconds.
    static func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    /// Waits for a child to exit, killing it after `timeout` seconds; its status, or nil when it had to be killed.
    static func finish(_ child: ChildProcess, timeout: Double) -> Int32? {
        if waitUntil(timeout: timeout, { child.exitCode != nil }) { return child.exitCode }
        child.send(SIGKILL)
        child.wait()
        return nil
    }
}
