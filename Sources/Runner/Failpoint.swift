import Foundation

/// Named points in a worker's work where a test can stop it, to kill it there: `ODAM_FAILPOINT=NAME` makes the first
/// pass through NAME announce itself on stderr (`odam failpoint NAME reached`) and then wait, until the file named by
/// `ODAM_FAILPOINT_RELEASE` exists (or for good when none is named). Points: `claimed` (a shard claimed, nothing
/// processed), `inference` (after an image's forward pass), `upload` (between an image's uploads), `commit` (all
/// uploads done, before the shard's transaction). Unset, a point costs one comparison.
public enum Failpoint {
    static let armed: String? = ProcessInfo.processInfo.environment["ODAM_FAILPOINT"]
    static let release: String? = ProcessInfo.processInfo.environment["ODAM_FAILPOINT_RELEASE"]
    nonisolated(unsafe) static var reached = false
    static let lock = NSLock()

    public static func hit(_ name: String) {
        guard armed == name else { return }
        let first = lock.withLock { () -> Bool in
            defer { reached = true }
            return !reached
        }
        guard first else { return }
        FileHandle.standardError.write(Data("odam failpoint \(name) reached (pid \(getpid()))\n".utf8))
        while release.map({ !FileManager.default.fileExists(atPath: $0) }) ?? true { usleep(50_000) }
    }
}
