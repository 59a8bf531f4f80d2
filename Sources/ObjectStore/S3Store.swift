import Digest
import Foundation

/// S3-compatible object storage through libcurl: Signature V4 by `CURLOPT_AWS_SIGV4` with the region and service
/// given explicitly and `x-amz-content-sha256` always set to the body's real SHA-256; path-style or virtual-host
/// addressing; retries with full-jitter backoff on 5xx, 429, SlowDown, RequestTimeout, timeouts and resets,
/// rewinding the body each time. Credentials never appear in messages.
public final class S3Store: ObjectStore, @unchecked Sendable {
    // The requests go through an HTTPClient, which creates a curl handle per request: threads never share one.
    public struct Configuration: Sendable {
        /// `http(s)://host:port`, without the bucket.
        public var endpoint: String
        public var region: String
        public var bucket: String
        public var accessKey: String
        public var secretKey: String
        /// `endpoint/bucket/key` (MinIO, SeaweedFS) rather than `bucket.host/key`.
        public var pathStyle: Bool
        /// Prepended to every key (a job's output prefix).
        public var prefix: String
        public var maxAttempts: Int
        /// Seconds for a whole request.
        public var timeout: Int
        /// Objects of at least this many bytes go up as multipart uploads, in parts of `partSize` (S3's minimum part
        /// is 5 MiB).
        public var multipartThreshold = 16 << 20
        public var partSize = 8 << 20
        /// The session token of temporary credentials (`AWS_SESSION_TOKEN`).
        public var sessionToken: String?

        public init(
            endpoint: String, region: String = "us-east-1", bucket: String, accessKey: String, secretKey: String, pathStyle: Bool = true,
            prefix: String = "", maxAttempts: Int = 5, timeout: Int = 120
        ) {
            self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            self.region = region
            self.bucket = bucket
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.pathStyle = pathStyle
            self.prefix = prefix
            self.maxAttempts = maxAttempts
            self.timeout = timeout
        }

        /// From the usual variables: `AWS_ENDPOINT_URL` (unless `endpoint` is given), `AWS_REGION` (or
        /// `AWS_DEFAULT_REGION`, unless `region` is given), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, for
        /// temporary credentials, `AWS_SESSION_TOKEN`. Without an endpoint it is AWS's own for the region,
        /// `https://s3.REGION.amazonaws.com`, addressed virtual-hosted (as AWS asks); a given endpoint is addressed by
        /// path (as most other servers need).
        public static func fromEnvironment(
            bucket: String, prefix: String = "", endpoint: String? = nil, region: String? = nil,
            environment env: [String: String] = ProcessInfo.processInfo.environment
        ) throws -> Configuration {
            let region = region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
            guard region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }), !region.isEmpty else {
                throw ObjectStoreError("S3 region '\(region)' is not a region name (such as eu-west-1)")
            }
            let given = endpoint ?? env["AWS_ENDPOINT_URL"].flatMap { $0.isEmpty ? nil : $0 }
            guard let key = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"] else {
                throw ObjectStoreError("S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
            }
            var configuration = Configuration(
                endpoint: given ?? "https://s3.\(region).amazonaws.com", region: region, bucket: bucket, accessKey: key, secretKey: secret,
                pathStyle: given != nil, prefix: prefix)
            configuration.sessionToken = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return configuration
        }
    }

    public let configuration: Configuration
    let client: HTTPClient
    /// Attempts that were retried, for the runner's statistics.
    public var retries: Int { client.retries }

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        client = HTTPClient(
            signing: HTTPClient.Signing(
                region: configuration.region, accessKey: configuration.accessKey, secretKey: configuration.secretKey,
                sessionToken: configuration.sessionToken),
            maxAttempts: configuration.maxAttempts, timeout: configuration.timeout)
    }

    /// The URL of a key (or of the bucket when `key` is nil); the key is sanitized and percent-encoded.
    public func url(for key: String) -> String { objectURL(key) }

    func objectURL(_ key: String?) -> String {
        let path = key.map { "/" + Self.encodedPath(sanitizedKey(configuration.prefix + $0)) } ?? ""
        if configuration.pathStyle { return "\(configuration.endpoint)/\(configuration.bucket)\(path)" }
        let parts = configuration.endpoint.components(separatedBy: "://")
        return "\(parts[0])://\(configuration.bucket).\(parts.count > 1 ? parts[1] : parts[0])\(path)"
    }

    /// Sanitized keys hold only `[A-Za-z0-9/._-]`, which needs no encoding; kept for clarity at the boundary.
    static func encodedPath(_ key: String) -> String {
        key.addingPercentEncoding(
            withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-")) ?? key
    }

    /// Creates the bucket (an existing one of ours is fine).
    public func createContainerIfMissing() throws { try createBucket() }

    public func createBucket() throws {
        let response = try client.request(method: "PUT", url: objectURL(nil), body: [], what: "creating bucket \(configuration.bucket)")
        guard (200..<300).contains(response.status) || response.errorCode == "BucketAlreadyOwnedByYou" else {
            throw response.error("creating bucket \(configuration.bucket)")
        }
    }

    /// Uploads in one request, or as a multipart upload when `bytes` reach the configuration's threshold.
    public func put(_ key: String, bytes: [UInt8], contentType: String) throws {
        if bytes.count >= configuration.multipartThreshold { return try putMultipart(key, bytes: bytes, contentType: contentType) }
        let response = try client.request(
            method: "PUT", url: objectURL(key), body: bytes, contentType: contentType, what: "uploading \(key)")
        guard (200..<300).contains(response.status) else { throw response.error("uploading \(key) to \(configuration.bucket)") }
    }

    /// CreateMultipartUpload, UploadPart per `partSize` bytes (each retried on its own), CompleteMultipartUpload; an
    /// upload that fails is aborted so that no parts are left behind.
    func putMultipart(_ key: String, bytes: [UInt8], contentType: String) throws {
        let url = objectURL(key)
        let created = try client.request(
            method: "POST", url: url + "?uploads=", body: [], contentType: contentType, what: "starting a multipart upload of \(key)")
        guard (200..<300).contains(created.status), let uploadID = created.xmlValue("UploadId") else {
            throw created.error("starting a multipart upload of \(key) to \(configuration.bucket)")
        }
        // Encoded as SigV4's canonical query string encodes (RFC 3986 unreserved characters stay), so that the signed
        // and the sent query agree.
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
        let encodedID = uploadID.addingPercentEncoding(withAllowedCharacters: unreserved) ?? uploadID
        do {
            var etags: [String] = []
            for (index, start) in stride(from: 0, to: bytes.count, by: configuration.partSize).enumerated() {
                let part = Array(bytes[start..<min(bytes.count, start + configuration.partSize)])
                let response = try client.request(
                    method: "PUT", url: url + "?partNumber=\(index + 1)&uploadId=\(encodedID)", body: part,
                    what: "uploading part \(index + 1) of \(key)")
                guard (200..<300).contains(response.status), let etag = response.headers["etag"] else {
                    throw response.error("uploading part \(index + 1) of \(key) to \(configuration.bucket)")
                }
                etags.append(etag)
            }
            let manifest =
                "<CompleteMultipartUpload>"
                + etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\($0.element)</ETag></Part>" }.joined()
                + "</CompleteMultipartUpload>"
            let completed = try client.request(
                method: "POST", url: url + "?uploadId=\(encodedID)", body: Array(manifest.utf8), contentType: "application/xml",
                what: "completing the multipart upload of \(key)")
            // S3 may answer 200 with an <Error> body when completion fails late.
            guard (200..<300).contains(completed.status), completed.errorCode == nil else {
                throw completed.error("completing the multipart upload of \(key) to \(configuration.bucket)")
            }
        } catch {
            _ = try? client.request(method: "DELETE", url: url + "?uploadId=\(encodedID)", body: nil, what: "aborting the upload of \(key)")
            throw error
        }
    }

    public func get(_ key: String) throws -> [UInt8]? {
        let response = try client.request(method: "GET", url: objectURL(key), body: nil, what: "downloading \(key)")
        if response.status == 404 { return nil }
        guard (200..<300).contains(response.status) else { throw response.error("downloading \(key) from \(configuration.bucket)") }
        return response.body
    }
}
