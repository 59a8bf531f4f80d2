import CCurl
import Digest
import Foundation

/// HTTP requests through libcurl, with retries: full-jitter backoff on 5xx, 429, S3's SlowDown and RequestTimeout,
/// timeouts and resets, a fresh transfer (the body rewound) per attempt; optionally signed with AWS Signature V4
/// (`CURLOPT_AWS_SIGV4`, the region and service explicit, `x-amz-content-sha256` always the body's real SHA-256).
/// Certificates are checked. Credentials never appear in messages.
public final class HTTPClient: @unchecked Sendable {
    /// The credentials and region of Signature V4.
    public struct Signing: Sendable {
        public var region: String
        public var accessKey: String
        public var secretKey: String
        /// Temporary credentials' token (STS, SSO, instance roles), sent as `x-amz-security-token`, which SigV4 signs.
        public var sessionToken: String?
        public var service = "s3"
    }

    public let signing: Signing?
    public let maxAttempts: Int
    /// Seconds for a whole request.
    public let timeout: Int
    /// Attempts that were retried so far (the runner records them per image).
    public var retries: Int { lock.withLock { retryCount } }
    private var retryCount = 0
    private let lock = NSLock()

    public init(signing: Signing? = nil, maxAttempts: Int = 5, timeout: Int = 120) {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        self.signing = signing
        self.maxAttempts = maxAttempts
        self.timeout = timeout
    }

    /// A response: status, body and headers (names lowercased).
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var headers: [String: String]

        /// S3's `<Code>` of an error body.
        public var errorCode: String? { xmlValue("Code") }

        /// The text of the first `<name>` element of the body.
        public func xmlValue(_ name: String) -> String? {
            let text = String(decoding: body, as: UTF8.self)
            guard let start = text.range(of: "<\(name)>"), let end = text.range(of: "</\(name)>", range: start.upperBound..<text.endIndex)
            else { return nil }
            return String(text[start.upperBound..<end.lowerBound])
        }

        public func error(_ doing: String) -> ObjectStoreError {
            ObjectStoreError(
                "\(doing): HTTP \(status)\(errorCode.map { ", S3 error \($0)" } ?? "")", isUnreachable: (502...504).contains(status))
        }
    }

    /// The body being sent and the response being received, reachable from libcurl's callbacks.
    final class Transfer {
        let upload: [UInt8]
        var offset = 0
        var received: [UInt8] = []
        var headers: [String: String] = [:]
        init(upload: [UInt8]) { self.upload = upload }
    }

    /// One request with retries; `what` names it in errors.
    public func request(method: String, url: String, body: [UInt8]?, contentType: String? = nil, what: String) throws -> Response {
        let payloadHash = SHA256.hex(body ?? [])
        var attempt = 0
        while true {
            attempt += 1
            let outcome = perform(method: method, url: url, body: body, contentType: contentType, payloadHash: payloadHash)
            switch outcome {
            case .success(let response):
                let retryable =
                    response.status >= 500 || response.status == 429 || response.errorCode == "SlowDown"
                    || response.errorCode == "RequestTimeout"
                if !retryable || attempt >= maxAttempts { return response }
            case .failure(let error):
                if attempt >= maxAttempts {
                    throw ObjectStoreError("\(what) at \(url): \(error) after \(attempt) attempts", isUnreachable: error.isUnreachable)
                }
            }
            lock.withLock { retryCount += 1 }
            // Full jitter: uniform in [0, min(cap, base · 2^attempt)].
            let ceiling = min(5.0, 0.05 * pow(2, Double(attempt)))
            usleep(UInt32(Double.random(in: 0...ceiling) * 1_000_000))
        }
    }

    enum CurlFailure: Error, CustomStringConvertible {
        case code(CURLcode, String)

        /// Transport failures that mean "no server answered": resolving, connecting, timing out, a dropped connection.
        var isUnreachable: Bool {
            switch self {
            case .code(let code, _):
                [
                    CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT,
                    CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
                ].contains(code)
            }
        }
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
        if signing != nil { headers = curl_slist_append(headers, "x-amz-content-sha256: \(payloadHash)") }
        // libcurl's SigV4 signs every x-amz-* header given here, the token included.
        if let token = signing?.sessionToken { headers = curl_slist_append(headers, "x-amz-security-token: \(token)") }
        if let contentType { headers = curl_slist_append(headers, "Content-Type: \(contentType)") }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        defer { errorBuffer.deallocate() }

        odam_curl_easy_setopt_string(handle, CURLOPT_URL, url)
        if let signing {
            odam_curl_easy_setopt_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(signing.region):\(signing.service)")
            odam_curl_easy_setopt_string(handle, CURLOPT_USERNAME, signing.accessKey)
            odam_curl_easy_setopt_string(handle, CURLOPT_PASSWORD, signing.secretKey)
        }
        odam_curl_easy_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headers))
        odam_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))
        odam_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT, timeout)
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
        let header: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let bytes = size * count
            if let data {
                let line = String(decoding: UnsafeRawBufferPointer(start: data, count: bytes), as: UTF8.self)
                if let colon = line.firstIndex(of: ":") {
                    transfer.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                        in: .whitespacesAndNewlines)
                }
            }
            return bytes
        }
        odam_curl_easy_setopt_pointer(handle, CURLOPT_HEADERFUNCTION, unsafeBitCast(header, to: UnsafeMutableRawPointer.self))
        odam_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context.toOpaque())
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
        case "POST":
            // The body is copied by libcurl (COPYPOSTFIELDS), so it need not outlive this call.
            odam_curl_easy_setopt_long(handle, CURLOPT_POST, 1)
            odam_curl_easy_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(transfer.upload.count))
            transfer.upload.withUnsafeBytes { bytes in
                odam_curl_easy_setopt_pointer(
                    handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)
                )
            }
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
        return .success(Response(status: status, body: transfer.received, headers: transfer.headers))
    }
}
