import Foundation
import Postgres
import Processes

/// The `odam` executable these tests run as users do: the one built next to the test bundle (the README's test command
/// builds it first, `swift build -c release`; a test that needs it fails naming that when it is missing).
public enum OdamBinary {
    /// Its path.
    public static var path: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("odam").path
    }

    /// Throws, saying how to build it, when the binary is missing.
    public static func require() throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestDependencyError("no odam binary at \(path): build it first (swift build -c release)")
        }
    }

    /// What a finished run printed.
    public struct Run: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// Both, standard output first.
        public var output: String { stdout + stderr }
    }

    /// The variables by which odam finds a database: a child sees only those its test names.
    static let databaseVariables = ["ODAM_DATABASE_URL", "DATABASE_URL"] + ConnectionInfo.serverVariables

    /// Runs odam with `arguments` to its end (in `folder`, with `environment` added, on the embedded database unless
    /// the environment names one); its status and what it printed on each stream.
    public static func run(_ arguments: [String], in folder: String? = nil, environment: [String: String] = [:]) throws -> Run {
        try require()
        let scratch = NSTemporaryDirectory() + "odam-command-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        FileManager.default.createFile(atPath: scratch + ".out", contents: nil)
        FileManager.default.createFile(atPath: scratch + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: scratch + ".out")
            try? FileManager.default.removeItem(atPath: scratch + ".err")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        var merged = ProcessInfo.processInfo.environment
        for name in databaseVariables { merged[name] = nil }
        process.environment = merged.merging(environment) { $1 }
        // Files rather than pipes: a child that fills one pipe while the other is read would never finish.
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".err"))
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Run(
            status: process.terminationStatus, stdout: (try? String(contentsOfFile: scratch + ".out", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: scratch + ".err", encoding: .utf8)) ?? "")
    }

    /// Starts odam as a child process (see ``run(_:in:environment:)``) without waiting, its output going to `log`.
    public static func start(_ arguments: [String], in folder: String? = nil, environment: [String: String] = [:], log: String) throws
        -> ChildProcess
    {
        try require()
        let inherited = databaseVariables.filter { environment[$0] == nil }
        let unset = inherited.isEmpty ? "" : "unset \(inherited.joined(separator: " ")) && "
        return try ChildProcess(
            ["/bin/sh", "-c", "cd \"$1\" && shift && \(unset)exec \"$@\"", "sh", folder ?? FileManager.default.currentDirectoryPath, path]
                + arguments, environment: environment, output: log)
    }
}
