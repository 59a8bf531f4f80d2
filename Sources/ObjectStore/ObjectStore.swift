import Foundation

/// Where a job's objects (maps files, overlays, detections JSON) go: S3-compatible storage or a local folder.
public protocol ObjectStore: Sendable {
    /// Writes `bytes` under `key`, replacing what was there (keys are deterministic, so a retry overwrites).
    func put(_ key: String, bytes: [UInt8], contentType: String) throws
    /// The object's bytes, or nil when there is none.
    func get(_ key: String) throws -> [UInt8]?
    /// A URL users can open for `key` (for the SQL views and exports).
    func url(for key: String) -> String
    /// Requests retried so far by this store (uploads that needed a second try), for the runner's timings.
    var retries: Int { get }
    /// Creates what writes need (an S3 bucket) when it is missing and the credentials may; stores that need nothing
    /// return at once.
    func createContainerIfMissing() throws
}

extension ObjectStore {
    public var retries: Int { 0 }
    public func createContainerIfMissing() throws {}
}

/// A failure of the object store, naming the key and the cause (HTTP status and S3 error code for S3).
public struct ObjectStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The store could not be reached at all (connection refused, name not resolved, timeout, a gateway's 502-504):
    /// an outage to wait out, not a fault of the shard being worked on.
    public var isUnreachable: Bool

    public init(_ description: String, isUnreachable: Bool = false) {
        self.description = description
        self.isUnreachable = isUnreachable
    }
}

/// Object keys made safe: `[A-Za-z0-9/._-]` only, no empty, `.` or `..` segments, no leading slash; anything else
/// becomes `_` (S3 signs paths literally, and a local store must never leave its folder).
public func sanitizedKey(_ key: String) -> String {
    let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    let segments = key.split(separator: "/", omittingEmptySubsequences: true).map { segment -> String in
        let cleaned = String(segment.map { allowed.contains($0) ? $0 : "_" })
        return cleaned == "." || cleaned == ".." ? "_" : cleaned
    }
    return segments.isEmpty ? "_" : segments.joined(separator: "/")
}

/// A local folder as an object store (`file://` in job specs): each put is written to a temporary file in the
/// same folder and renamed over the key, so readers never see half an object.
public struct FileStore: ObjectStore {
    public let root: String

    public init(root: String) throws {
        self.root = (root as NSString).standardizingPath
        try FileManager.default.createDirectory(atPath: self.root, withIntermediateDirectories: true)
    }

    func path(_ key: String) -> String { root + "/" + sanitizedKey(key) }

    public func put(_ key: String, bytes: [UInt8], contentType: String) throws {
        let target = path(key)
        let folder = (target as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ObjectStoreError("\(target): cannot create its folder (\(error.localizedDescription))")
        }
        let temporary = folder + "/.\((target as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw ObjectStoreError("\(temporary): cannot create (\(String(cString: strerror(errno))))") }
        var written = 0
        let failure: Int32? = bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return fsync(descriptor) == 0 ? nil : errno
        }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw ObjectStoreError("\(target): cannot write \(bytes.count) bytes (\(String(cString: strerror(failure))))")
        }
        guard rename(temporary, target) == 0 else {
            let cause = String(cString: strerror(errno))
            unlink(temporary)
            throw ObjectStoreError("\(target): cannot move the written object into place (\(cause))")
        }
    }

    public func get(_ key: String) throws -> [UInt8]? {
        let target = path(key)
        guard FileManager.default.fileExists(atPath: target) else { return nil }
        guard let data = FileManager.default.contents(atPath: target) else { throw ObjectStoreError("\(target): cannot read") }
        return [UInt8](data)
    }

    public func url(for key: String) -> String { "file://" + path(key) }
}
