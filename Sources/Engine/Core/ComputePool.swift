import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The engine's own compute threads for ``parallelFor``: persistent, and spinning for a short while between
/// parallel regions before they sleep. A training step runs thousands of short regions back to back; waking a
/// sleeping thread for each (as `DispatchQueue.concurrentPerform` does) cost about a tenth of the step in the
/// kernel's scheduler.
///
/// One region runs at a time; a caller that finds the pool busy (another thread's region) runs its loop inline.
final class ComputePool: @unchecked Sendable {
    static let shared = ComputePool()

    private let busy = Atomic<Bool>(false)
    /// Advanced by each region; workers run their chunk of every generation and acknowledge it.
    private let generation = Atomic<Int>(0)
    private let acknowledgements = Atomic<Int>(0)
    // Written by the region's caller before it advances `generation`, read by workers after they see it.
    nonisolated(unsafe) private var task: ((Int) -> Void)?
    nonisolated(unsafe) private var chunkCount = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeUp = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    nonisolated(unsafe) private var sleepers = 0
    nonisolated(unsafe) private var workers = 0

    /// Spins (about 50 µs) before a worker sleeps.
    private let spinLimit = 200_000

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeUp, nil)
    }

    /// Runs `body(chunk)` for `0..<chunks`, chunk 0 on the calling thread; false (nothing run) when the pool is busy.
    func run(chunks: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        pthread_mutex_lock(mutex)
        while workers < chunks - 1 { startWorker(index: workers + 1) }
        let workerCount = workers
        pthread_mutex_unlock(mutex)
        return withoutActuallyEscaping(body) { body in
            task = body
            chunkCount = chunks
            acknowledgements.store(0, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            pthread_mutex_lock(mutex)
            if sleepers > 0 { pthread_cond_broadcast(wakeUp) }
            pthread_mutex_unlock(mutex)
            body(0)
            while acknowledgements.load(ordering: .acquiring) < workerCount {}
            task = nil
            return true
        }
    }

    /// Starts worker `index` (called with `mutex` held).
    private func startWorker(index: Int) {
        workers += 1
        let seen = generation.load(ordering: .acquiring)
        let context = Unmanaged.passRetained(WorkerStart(pool: self, index: index, seen: seen)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { argument in
                let start = Unmanaged<WorkerStart>.fromOpaque(argument!).takeRetainedValue()
                start.pool.workerLoop(index: start.index, seen: start.seen)
                return nil
            }, context)
        precondition(created == 0, "cannot start a compute thread (error \(created))")
        pthread_detach(thread)
    }

    /// What a new worker thread needs, passed through pthread_create.
    private final class WorkerStart {
        let pool: ComputePool
        let index: Int
        let seen: Int
        init(pool: ComputePool, index: Int, seen: Int) { (self.pool, self.index, self.seen) = (pool, index, seen) }
    }

    fileprivate func workerLoop(index: Int, seen initial: Int) {
        var seen = initial
        while true {
            var current = generation.load(ordering: .acquiring)
            var spins = 0
            while current == seen && spins < spinLimit {
                spins += 1
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(mutex)
                sleepers += 1
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wakeUp, mutex) }
                sleepers -= 1
                pthread_mutex_unlock(mutex)
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if index < chunkCount, let task { task(index) }
            acknowledgements.add(1, ordering: .releasing)
        }
    }
}
