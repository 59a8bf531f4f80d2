#if canImport(Glibc)
    import Glibc
#endif

/// Why a file could not be read: the file as the user named it and the cause, as errno or odam's check says it.
public struct FileReadError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case unreadable, notRegular, outsideRoot, tooLarge }

    public var file: String
    public var kind: Kind
    public var reason: String

    public init(file: String, kind: Kind, _ reason: String) {
        self.file = file
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}

/// Reads files that odam did not write (images, weights, job specs) without trusting what they are.
///
/// A FIFO, socket or device named `x.png` is refused before it can block or stream forever: the file is opened
/// non-blocking, checked to be a regular file with `fstat` on the open descriptor (no race with a rename), and only
/// then read. With a `root`, the file's real path (symbolic links resolved) must lie inside the root's real path.
public enum RegularFile {
    /// The whole file at `path`, a ``RawPath`` encoding of its bytes.
    public static func read(_ path: String, inside root: String? = nil, maximumBytes: Int = Int.max) throws(FileReadError) -> [UInt8] {
        if let root { try RawPath.checkInside(path, root: root) }
        let descriptor = RawPath.withCString(path) { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard descriptor >= 0 else { throw FileReadError(file: path, kind: .unreadable, "cannot open: \(errnoText())") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw FileReadError(file: path, kind: .unreadable, "cannot stat: \(errnoText())")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw FileReadError(file: path, kind: .notRegular, "not a regular file (\(RawPath.typeName(status.st_mode)))")
        }
        guard Int(status.st_size) <= maximumBytes else {
            throw FileReadError(file: path, kind: .tooLarge, "\(status.st_size) bytes exceed the limit of \(maximumBytes)")
        }
        // Regular files never block; clear the flag so that reads of network file systems behave as usual.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw in Glibc.read(descriptor, raw.baseAddress! + offset, raw.count - offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileReadError(file: path, kind: .unreadable, "read failed at byte \(offset): \(errnoText())")
            }
            if count == 0 { break }
            offset += count
        }
        return Array(bytes.prefix(offset))
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
