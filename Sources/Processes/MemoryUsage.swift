import CSystem
import Foundation

/// This process's memory as the kernel counts it (Linux `/proc/self`), for the worker's reports.
public enum MemoryUsage {
    /// Resident bytes now (`statm`'s resident pages), or nil where /proc cannot be read.
    public static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The most resident bytes since the process started (`status`'s VmHWM), or nil where /proc cannot be read.
    public static func peakResidentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let number = line.dropFirst("VmHWM:".count).trimmingCharacters(in: .whitespaces).split(separator: " ").first
            return number.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }

    /// Hands freed heap memory back to the kernel (glibc's `malloc_trim`), so that resident memory follows what is
    /// in use after a burst of large allocations.
    public static func releaseFreedHeap() {
        _ = odam_release_free_heap()
    }

    /// Serves allocations of at least `bytes` with mappings of their own, returned to the kernel when freed, at a
    /// fixed threshold (glibc otherwise raises it after large frees, and a long-running worker's heap then fragments
    /// and grows). Buffers reused image after image stay in odam's pool and never reach the C library.
    public static func fixLargeAllocationThreshold(bytes: Int = 128 << 10) {
        _ = odam_set_mmap_threshold(bytes)
    }
}
