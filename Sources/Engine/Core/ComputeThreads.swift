import CBLAS
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The number of threads the engine computes with, for OpenBLAS and for its own loops alike.
///
/// One setting governs both (`--threads` / `ODAM_THREADS`, default: all cores). The engine never runs a BLAS call
/// inside one of its own parallel loops, so the two never oversubscribe the cores.
public enum ComputeThreads {
    private static let configured = Atomic<Int>(0)

    /// The thread count in force.
    public static var count: Int {
        let value = configured.load(ordering: .relaxed)
        if value > 0 { return value }
        let initial = Int(ProcessEnvironment.value("ODAM_THREADS") ?? "") ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        set(max(1, initial))
        return configured.load(ordering: .relaxed)
    }

    /// Sets the thread count for the engine and OpenBLAS.
    public static func set(_ threads: Int) {
        let threads = max(1, threads)
        configured.store(threads, ordering: .relaxed)
        openblas_set_num_threads(Int32(threads))
    }

    /// Runs `body` with OpenBLAS on one thread, for GEMMs issued from inside the engine's own parallel loops.
    package static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let threads = count
        if threads == 1 { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(threads)) }
        return try body()
    }

    /// The name of the OpenBLAS kernel family in use (for example Haswell or Cooperlake).
    public static var blasCoreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}

/// Runs `body` over `0..<count` split into contiguous chunks, one per compute thread.
///
/// Each chunk must write a disjoint part of the output. Small loops (`count * costPerItem` under about 32k
/// operations) run inline.
@inline(__always)
package func parallelFor(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = ComputeThreads.count
    if threads == 1 || count < 2 || count * costPerItem < 32_768 {
        body(0..<count)
        return
    }
    let chunks = min(threads, count)
    withoutActuallyEscaping(body) { body in
        // Each chunk touches a disjoint range; the closure is only called during concurrentPerform.
        nonisolated(unsafe) let chunkBody = body
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { chunkBody(start..<end) }
        }
    }
}
