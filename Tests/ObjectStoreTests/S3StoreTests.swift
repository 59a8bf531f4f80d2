import Digest
import Foundation
import ObjectStore
import ServiceTestSupport
import TestSupport
import Testing

@Suite(.serialized)
struct S3StoreTests {
    @Test func putGetOverwriteAndMissing() throws {
        let store = try SeaweedServer.shared().store(bucket: "odam-test", prefix: "job1/")
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
        let good = try SeaweedServer.shared().store(bucket: "odam-auth")
        try good.createBucket()
        try good.put("x.txt", bytes: Array("hello".utf8), contentType: "text/plain")
        // A wrong secret is refused: the server checks signatures, so the signed requests above proved something.
        let wrong = try SeaweedServer.shared().store(bucket: "odam-auth", secret: "not-the-secret-at-all")
        #expect {
            try wrong.get("x.txt")
        } throws: { error in
            let text = "\(error)"
            return text.contains("HTTP 403") && text.contains("SignatureDoesNotMatch") && !text.contains("not-the-secret")
        }
    }

    /// Temporary credentials: the token goes with every request, among the headers SigV4 signs. SeaweedFS takes a
    /// request with a token for one of its own STS sessions and refuses one it did not issue, so the request is
    /// checked on the wire, through a relay, and the refusal shows that the server read the token.
    @Test func sessionTokensAreSentAndSigned() throws {
        let seaweed = try SeaweedServer.shared()
        try seaweed.store(bucket: "odam-session").createBucket()
        let port = try freeLoopbackPorts(1, range: 50_000..<60_000)[0]
        let proxy = try FaultProxy(port: UInt16(port), upstreamPort: UInt16(seaweed.port)) { _ in nil }
        var configuration = seaweed.store(bucket: "odam-session").configuration
        configuration.endpoint = "http://127.0.0.1:\(port)"
        configuration.maxAttempts = 1
        #expect(try S3Store(configuration).get("absent.txt") == nil, "without a token the relay passes signed requests")
        configuration.sessionToken = "FwoGZXIvYXdzEXAMPLE//token+with/odd=chars"
        #expect {
            try S3Store(configuration).put("t.txt", bytes: Array("temporary".utf8), contentType: "text/plain")
        } throws: { error in
            "\(error)".contains("HTTP 403") && "\(error)".contains("InvalidAccessKeyId") && !"\(error)".contains("EXAMPLE")
        }
        let heads = proxy.relayedRequestHeads
        #expect(heads.count == 2)
        let withToken = heads.last!.lowercased().components(separatedBy: "\r\n")
        #expect(withToken.contains("x-amz-security-token: fwogzxivyxdzexample//token+with/odd=chars"), "\(heads.last!)")
        let authorization = try #require(withToken.first { $0.hasPrefix("authorization: aws4-hmac-sha256") }, "\(heads.last!)")
        #expect(authorization.contains(";x-amz-security-token"), "the token is among the signed headers: \(authorization)")
        #expect(!heads.first!.lowercased().contains("x-amz-security-token"))
    }

    @Test func anUnreachableServerIsNamedAfterRetries() {
        let store = S3Store(.init(endpoint: "http://127.0.0.1:9", bucket: "b", accessKey: "k", secretKey: "s", maxAttempts: 2, timeout: 5))
        #expect {
            try store.put("k", bytes: [1], contentType: "text/plain")
        } throws: { "\($0)".contains("127.0.0.1:9") && "\($0)".contains("after 2 attempts") }
        #expect(store.retries == 1)
    }

    @Test func largeObjectsGoUpInParts() throws {
        var configuration = try SeaweedServer.shared().store(bucket: "odam-multipart").configuration
        configuration.multipartThreshold = 5 << 20
        configuration.partSize = 5 << 20
        let store = S3Store(configuration)
        try store.createBucket()
        let payload = (0..<(12 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        try store.put("big/maps.safetensors", bytes: payload, contentType: "application/octet-stream")
        let back = try #require(try store.get("big/maps.safetensors"))
        #expect(back.count == payload.count && SHA256.hex(back) == SHA256.hex(payload), "three parts make the whole object")
        #expect(store.retries == 0)
    }
}

/// Where S3 is when the job names no endpoint: AWS's own for the region, virtual-hosted.
struct S3ConfigurationTests {
    static let credentials = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"]

    @Test func withoutAnEndpointItIsAWSForTheRegionVirtualHosted() throws {
        let aws = try S3Store.Configuration.fromEnvironment(
            bucket: "photos", environment: Self.credentials.merging(["AWS_REGION": "eu-west-1"]) { $1 })
        #expect(aws.endpoint == "https://s3.eu-west-1.amazonaws.com" && !aws.pathStyle && aws.region == "eu-west-1")
        #expect(S3Store(aws).url(for: "a/b.png") == "https://photos.s3.eu-west-1.amazonaws.com/a/b.png")
        // The job's region wins over the environment's, and names the endpoint.
        let spec = try S3Store.Configuration.fromEnvironment(
            bucket: "photos", region: "ap-south-1", environment: Self.credentials.merging(["AWS_DEFAULT_REGION": "eu-west-1"]) { $1 })
        #expect(spec.endpoint == "https://s3.ap-south-1.amazonaws.com")
        let token = try S3Store.Configuration.fromEnvironment(
            bucket: "photos", environment: Self.credentials.merging(["AWS_SESSION_TOKEN": "tok"]) { $1 })
        #expect(token.sessionToken == "tok" && token.region == "us-east-1")
    }

    @Test func aGivenEndpointIsAddressedByPath() throws {
        let local = try S3Store.Configuration.fromEnvironment(
            bucket: "photos", environment: Self.credentials.merging(["AWS_ENDPOINT_URL": "http://127.0.0.1:8333"]) { $1 })
        #expect(local.pathStyle && S3Store(local).url(for: "x.png") == "http://127.0.0.1:8333/photos/x.png")
        #expect(local.sessionToken == nil)
        #expect(throws: ObjectStoreError.self) {
            try S3Store.Configuration.fromEnvironment(bucket: "photos", region: "eu-west-1/../../evil", environment: Self.credentials)
        }
        #expect(throws: ObjectStoreError.self) { try S3Store.Configuration.fromEnvironment(bucket: "photos", environment: [:]) }
    }
}
