import Foundation

/// A TCP proxy on loopback for fault tests: of the connections it accepts, those the `fault` rule picks are answered
/// with an HTTP 503 (S3's SlowDown) or an HTTP 500, or dropped without an answer; the others are relayed to the
/// upstream port unchanged. Each libcurl request of odam's HTTP client opens its own connection, so faults are per
/// request.
public final class FaultProxy: @unchecked Sendable {
    public enum Fault: Sendable { case slowDown, internalError, drop }

    public let port: UInt16
    let upstreamPort: UInt16
    let listener: Int32
    let fault: @Sendable (Int) -> Fault?
    private let lock = NSLock()
    private var connections = 0
    private var faults = 0

    /// Requests answered with a fault so far.
    public var faultsInjected: Int { lock.withLock { faults } }
    /// The first bytes (the request line and headers) of each relayed request, for checks of what went on the wire.
    public var relayedRequestHeads: [String] { lock.withLock { heads } }
    private var heads: [String] = []

    /// Listens on `port` and relays to `upstreamPort`; `fault(n)` decides for the n-th connection (from 0).
    public init(port: UInt16, upstreamPort: UInt16, fault: @escaping @Sendable (Int) -> Fault?) throws {
        self.port = port
        self.upstreamPort = upstreamPort
        self.fault = fault
        listener = try loopbackListener(port: port)
        Thread { [self] in acceptLoop() }.start()
    }

    func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let index = lock.withLock { () -> Int in
                defer { connections += 1 }
                return connections
            }
            let decision = fault(index)
            if decision != nil { lock.withLock { faults += 1 } }
            Thread { [self] in handle(client, decision) }.start()
        }
    }

    func handle(_ client: Int32, _ decision: Fault?) {
        switch decision {
        case .drop:
            // Read a little of the request, then reset the connection.
            var buffer = [UInt8](repeating: 0, count: 512)
            _ = recv(client, &buffer, buffer.count, 0)
            var linger = linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
            close(client)
        case .slowDown, .internalError:
            var buffer = [UInt8](repeating: 0, count: 4096)
            _ = recv(client, &buffer, buffer.count, 0)
            let (status, code) =
                decision == .slowDown ? ("503 Service Unavailable", "SlowDown") : ("500 Internal Server Error", "InternalError")
            let body = "<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>injected by the test proxy</Message></Error>"
            let response =
                "HTTP/1.1 \(status)\r\nContent-Type: application/xml\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = response.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            shutdown(client, Int32(SHUT_WR))
            while recv(client, &buffer, buffer.count, 0) > 0 {}
            close(client)
        case nil:
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = loopbackAddress(upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(upstream)
                close(client)
                return
            }
            let done = DispatchGroup()
            for (from, to) in [(client, upstream), (upstream, client)] {
                done.enter()
                Thread { [self] in
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    var first = from == client
                    while true {
                        let n = recv(from, &buffer, buffer.count, 0)
                        if n <= 0 { break }
                        if first {
                            let head = String(decoding: buffer[0..<n], as: UTF8.self)
                            lock.withLock { heads.append(head.components(separatedBy: "\r\n\r\n")[0]) }
                            first = false
                        }
                        if !sendAll(to, buffer[0..<n]) { break }
                    }
                    shutdown(to, Int32(SHUT_WR))
                    done.leave()
                }.start()
            }
            done.wait()
            close(upstream)
            close(client)
        }
    }
}

/// The IPv4 loopback address at `port`.
func loopbackAddress(_ port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// Sends all of `bytes` (partial sends continued); false when the peer went away first.
func sendAll(_ socket: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
    bytes.withUnsafeBytes { buffer in
        var sent = 0
        while sent < buffer.count {
            let m = send(socket, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
            if m <= 0 { return false }
            sent += m
        }
        return true
    }
}

/// A listening TCP socket on 127.0.0.1:`port`.
func loopbackListener(port: UInt16) throws -> Int32 {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var yes: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = loopbackAddress(port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(listener, 64) == 0 else {
        let cause = String(cString: strerror(errno))
        close(listener)
        throw TestDependencyError("cannot listen on 127.0.0.1:\(port): \(cause)")
    }
    return listener
}

/// A static file server on loopback for the http(s) image source: `GET /PATH` answers the file at `root/PATH`
/// (percent-decoded) or 404. One request per connection.
public final class StaticHTTPServer: @unchecked Sendable {
    public let port: UInt16
    let root: String
    let listener: Int32

    public init(port: UInt16, root: String) throws {
        self.port = port
        self.root = root
        listener = try loopbackListener(port: port)
        Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                Thread { [self] in serve(client) }.start()
            }
        }.start()
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    func serve(_ client: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { break }
            request += buffer[0..<n]
        }
        let line = String(decoding: request, as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? ""
        let parts = line.split(separator: " ")
        let path = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? "") : ""
        var response: [UInt8]
        if !path.contains(".."), let data = FileManager.default.contents(atPath: root + path) {
            response = Array("HTTP/1.1 200 OK\r\nContent-Length: \(data.count)\r\nConnection: close\r\n\r\n".utf8) + [UInt8](data)
        } else {
            response = Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        }
        _ = sendAll(client, response[...])
        close(client)
    }
}
