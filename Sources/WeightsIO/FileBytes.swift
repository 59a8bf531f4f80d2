import Files
import Foundation

/// Whole-file reads and atomic writes, with errors that name the file and the cause.
public enum FileBytes {
    public static func read(_ path: String) throws -> [UInt8] {
        do {
            return try RegularFile.read(path)
        } catch {
            throw WeightsError(file: path, error.reason)
        }
    }

    /// Writes to a temporary file beside `path`, then renames it over `path`, so readers never see half a file.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
            throw WeightsError(file: path, "cannot write \(bytes.count) bytes (directory missing, read-only or disk full?)")
        }
        if rename(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            throw WeightsError(file: path, "cannot rename the written file into place: \(String(cString: strerror(code)))")
        }
    }
}
