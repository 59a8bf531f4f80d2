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

    /// Sets the thread count for the engine. OpenBLAS itself always runs single-threaded: the engine splits large
    /// GEMMs over its own threads (see `sgemm`), so OpenBLAS's spinning worker threads never compete for the cores.
    public static func set(_ threads: Int) {
        let threads = max(1, threads)
        configured.store(threads, ordering: .relaxed)
        openblas_set_num_threads(1)
    }

    /// True on a thread that runs a chunk of ``parallelFor``: nested work then runs inline.
    package static var isInsideParallelRegion: Bool { insideParallelRegion }

    /// The name of the OpenBLAS kernel family in use (for example Haswell or Cooperlake).
    public static var blasCoreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}

/// Whether this thread is running a chunk of a parallel loop (a thread-local flag).
nonisolated(unsafe) private var insideParallelRegionKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

private var insideParallelRegion: Bool {
    get { pthread_getspecific(insideParallelRegionKey) != nil }
    set { pthread_setspecific(insideParallelRegionKey, newValue ? UnsafeRawPointer(bitPattern: 1) : nil) }
}

/// Runs `body` over `0..<count` split into contiguous chunks, one per compute thread.
///
/// Each chunk must write a disjoint part of the output. Small loops (`count * costPerItem` under about 32k
/// operations) run inline.
@inline(__always)
package func parallelFor(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = ComputeThreads.count
    if threads == 1 || count < 2 || count * costPerItem < 32_768 || insideParallelRegion {
        body(0..<count)
        return
    }
    let chunks = min(threads, count)
    let ran = ComputePool.shared.run(chunks: chunks) { chunk in
        // Each chunk touches a disjoint range; the closure is only called during the region.
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        let wasInside = insideParallelRegion
        insideParallelRegion = true
        defer { insideParallelRegion = wasInside }
        if start < end { body(start..<end) }
    }
    if !ran { body(0..<count) }
}
