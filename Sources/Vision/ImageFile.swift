#if canImport(Glibc)
    import Glibc
#endif

/// Reads a whole file with POSIX calls, naming the file and errno's text on failure.
enum ImageFile {
    static func read(_ path: String) throws(ImageError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ImageError(file: path, kind: .unreadable, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw ImageError(file: path, kind: .unreadable, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw ImageError(file: path, kind: .unreadable, "not a regular file") }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw in
                Glibc.read(descriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw ImageError(file: path, kind: .unreadable, "read failed at byte \(offset): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            offset += count
        }
        return Array(bytes.prefix(offset))
    }
}
