#if canImport(Glibc)
    import Glibc
#endif

/// File names are bytes on Linux, not always UTF-8; odam's paths are Swift strings and PostgreSQL text.
///
/// A name's valid UTF-8 stays as it is. Each byte that is not part of valid UTF-8 becomes one private-use scalar,
/// U+10FF00 plus the byte, so every name survives the database and comes back to the same bytes. (A name that
/// itself holds one of those 256 scalars is ambiguous; the walk reports and skips it.)
public enum RawPath {
    static let escapeBase: UInt32 = 0x10_FF00

    /// The string for a name's bytes.
    public static func string(_ bytes: some Collection<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var scalars = String.UnicodeScalarView()
        var rest = Array(bytes)[...]
        while !rest.isEmpty {
            // The longest valid UTF-8 prefix (at most 4 bytes a scalar) is kept; one invalid byte is escaped.
            var decoded = false
            for length in (1...min(4, rest.count)).reversed() {
                if let text = String(validating: rest.prefix(length), as: UTF8.self), text.unicodeScalars.count == 1 {
                    scalars.append(text.unicodeScalars.first!)
                    rest = rest.dropFirst(length)
                    decoded = true
                    break
                }
            }
            if !decoded {
                scalars.append(Unicode.Scalar(escapeBase + UInt32(rest.first!))!)
                rest = rest.dropFirst()
            }
        }
        return String(scalars)
    }

    /// The bytes a string made by ``string(_:)`` stands for.
    public static func bytes(_ path: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count)
        for scalar in path.unicodeScalars {
            if scalar.value >= escapeBase, scalar.value <= escapeBase + 0xFF {
                out.append(UInt8(scalar.value - escapeBase))
            } else {
                out += Array(String(scalar).utf8)
            }
        }
        return out
    }

    /// Whether a valid UTF-8 name holds one of the escape scalars, so that it cannot be told from an escaped name.
    public static func isAmbiguous(_ name: String) -> Bool {
        name.unicodeScalars.contains { $0.value >= escapeBase && $0.value <= escapeBase + 0xFF }
    }

    /// Calls `body` with the C string of `path`'s bytes.
    public static func withCString<R>(_ path: String, _ body: (UnsafePointer<CChar>) -> R) -> R {
        let raw = bytes(path).map { CChar(bitPattern: $0) } + [0]
        return raw.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// The real path (symbolic links resolved), or nil with errno set.
    public static func realPath(_ path: String) -> String? {
        withCString(path) { pointer -> String? in
            guard let resolved = realpath(pointer, nil) else { return nil }
            defer { free(resolved) }
            return string(
                UnsafeBufferPointer(start: UnsafeRawPointer(resolved).assumingMemoryBound(to: UInt8.self), count: strlen(resolved)))
        }
    }

    /// Throws unless `path`, symbolic links resolved, lies inside `root` (also resolved).
    public static func checkInside(_ path: String, root: String) throws(FileReadError) {
        guard let realRoot = realPath(root) else {
            throw FileReadError(file: root, kind: .unreadable, "cannot resolve the folder: \(RegularFile.errnoText())")
        }
        guard let real = realPath(path) else {
            throw FileReadError(file: path, kind: .unreadable, "cannot open: \(RegularFile.errnoText())")
        }
        guard real == realRoot || real.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") else {
            throw FileReadError(
                file: path, kind: .outsideRoot, "resolves to a file outside the dataset folder \(root) (a symbolic link?); refused")
        }
    }

    /// A word for a file type from `st_mode`.
    public static func typeName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFDIR: "a folder"
        case S_IFLNK: "a symbolic link"
        default: "not a regular file"
        }
    }
}
