import CCurl
import Digest
import Foundation

/// S3-compatible object storage through libcurl: Signature V4 by `CURLOPT_AWS_SIGV4` with the region and service
/// given explicitly and `x-amz-content-sha256` always set to the body's real SHA-256; path-style or virtual-host
/// addressing; retries with full-jitter backoff on 5xx, 429, SlowDown, RequestTimeout, timeouts and resets,
/// rewinding the body each time. Credentials never appear in messages.
public final class S3Store: ObjectStore, @unchecked Sendable {
    // The curl handle is created per request: requests of different threads never share one.
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

        /// From the usual variables: `AWS_ENDPOINT_URL`, `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`,
        /// `AWS_SECRET_ACCESS_KEY`.
        public static func fromEnvironment(bucket: String, prefix: String = "") throws -> Configuration {
            let env = ProcessInfo.processInfo.environment
            guard let endpoint = env["AWS_ENDPOINT_URL"], let key = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"]
            else {
                throw ObjectStoreError(
                    "S3 needs AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the job spec's store settings)")
            }
            return Configuration(
                endpoint: endpoint, region: env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1", bucket: bucket, accessKey: key,
                secretKey: secret, prefix: prefix)
        }
    }

    public let configuration: Configuration
    /// Attempts that were retried, for the runner's statistics.
    public private(set) var retries = 0
    private let lock = NSLock()

    public init(_ configuration: Configuration) {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        self.configuration = configuration
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
    public func createBucket() throws {
        let response = try request(
            method: "PUT", url: objectURL(nil), body: [], contentType: nil, what: "creating bucket \(configuration.bucket)")
        guard (200..<300).contains(response.status) || response.errorCode == "BucketAlreadyOwnedByYou" else {
            throw response.error("creating bucket \(configuration.bucket)")
        }
    }

    public func put(_ key: String, bytes: [UInt8], contentType: String) throws {
        let response = try request(method: "PUT", url: objectURL(key), body: bytes, contentType: contentType, what: "uploading \(key)")
        guard (200..<300).contains(response.status) else { throw response.error("uploading \(key) to \(configuration.bucket)") }
    }

    public func get(_ key: String) throws -> [UInt8]? {
        let response = try request(method: "GET", url: objectURL(key), body: nil, contentType: nil, what: "downloading \(key)")
        if response.status == 404 { return nil }
        guard (200..<300).contains(response.status) else { throw response.error("downloading \(key) from \(configuration.bucket)") }
        return response.body
    }

    struct Response {
        var status: Int
        var body: [UInt8]
        var errorCode: String? {
            let text = String(decoding: body, as: UTF8.self)
            guard let start = text.range(of: "<Code>"), let end = text.range(of: "</Code>", range: start.upperBound..<text.endIndex) else {
                return nil
            }
            return String(text[start.upperBound..<end.lowerBound])
        }

        func error(_ doing: String) -> ObjectStoreError {
            ObjectStoreError("\(doing): HTTP \(status)\(errorCode.map { ", S3 error \($0)" } ?? "")")
        }
    }

    /// The body being sent and the response being received, reachable from libcurl's callbacks.
    final class Transfer {
        let upload: [UInt8]
        var offset = 0
        var received: [UInt8] = []
        init(upload: [UInt8]) { self.upload = upload }
    }

    /// One request with retries: a fresh transfer (the body rewound) per attempt.
    func request(method: String, url: String, body: [UInt8]?, contentType: String?, what: String) throws -> Response {
        let payloadHash = SHA256.hex(body ?? [])
        var attempt = 0
        while true {
            attempt += 1
            let outcome = perform(method: method, url: url, body: body, contentType: contentType, payloadHash: payloadHash)
            let retryable: Bool
            switch outcome {
            case .success(let response):
                retryable =
                    response.status >= 500 || response.status == 429 || response.errorCode == "SlowDown"
                    || response.errorCode == "RequestTimeout"
                if !retryable || attempt >= configuration.maxAttempts { return response }
            case .failure(let error):
                if attempt >= configuration.maxAttempts { throw ObjectStoreError("\(what) at \(url): \(error) after \(attempt) attempts") }
            }
            lock.withLock { retries += 1 }
            // Full jitter: uniform in [0, min(cap, base · 2^attempt)].
            let ceiling = min(5.0, 0.05 * pow(2, Double(attempt)))
            usleep(UInt32(Double.random(in: 0...ceiling) * 1_000_000))
        }
    }

    enum CurlFailure: Error, CustomStringConvertible {
        case code(CURLcode, String)
        var description: String {
            switch self {
            case .code(let code, let message): "curl error \(code.rawValue) (\(message))"
            }
        }
    }

    func perform(method: String, url: String, body: [UInt8]?, contentType: String?, payloadHash: String) -> Result<Response, CurlFailure> {
        guard let handle = curl_easy_init() else { return .failure(.code(CURLE_FAILED_INIT, "curl_easy_init failed")) }
        defer { curl_easy_cleanup(handle) }
        let transfer = Transfer(upload: body ?? [])
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headers) }
        headers = curl_slist_append(headers, "x-amz-content-sha256: \(payloadHash)")
        if let contentType { headers = curl_slist_append(headers, "Content-Type: \(contentType)") }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        defer { errorBuffer.deallocate() }

        odam_curl_easy_setopt_string(handle, CURLOPT_URL, url)
        odam_curl_easy_setopt_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(configuration.region):s3")
        odam_curl_easy_setopt_string(handle, CURLOPT_USERNAME, configuration.accessKey)
        odam_curl_easy_setopt_string(handle, CURLOPT_PASSWORD, configuration.secretKey)
        odam_curl_easy_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headers))
        odam_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))
        odam_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT, configuration.timeout)
        odam_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, 10)
        odam_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        odam_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        odam_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        let write: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let bytes = size * count
            if let data { transfer.received.append(contentsOf: UnsafeRawBufferPointer(start: data, count: bytes)) }
            return bytes
        }
        odam_curl_easy_setopt_pointer(handle, CURLOPT_WRITEFUNCTION, unsafeBitCast(write, to: UnsafeMutableRawPointer.self))
        odam_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context.toOpaque())
        switch method {
        case "PUT":
            let read: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
                buffer, size, count, user in
                let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
                let n = min(size * count, transfer.upload.count - transfer.offset)
                if n > 0, let buffer {
                    transfer.upload.withUnsafeBytes { source in
                        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + transfer.offset, byteCount: n)
                    }
                }
                transfer.offset += n
                return n
            }
            odam_curl_easy_setopt_long(handle, CURLOPT_UPLOAD, 1)
            odam_curl_easy_setopt_pointer(handle, CURLOPT_READFUNCTION, unsafeBitCast(read, to: UnsafeMutableRawPointer.self))
            odam_curl_easy_setopt_pointer(handle, CURLOPT_READDATA, context.toOpaque())
            odam_curl_easy_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(transfer.upload.count))
        case "GET":
            odam_curl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1)
        default:
            odam_curl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        }
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            let message = String(cString: errorBuffer)
            return .failure(.code(code, message.isEmpty ? String(cString: curl_easy_strerror(code)) : message))
        }
        var status = 0
        odam_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(Response(status: status, body: transfer.received))
    }
}
