#if canImport(Glibc)
    import Glibc
#endif

/// Tensors derived from weights (Winograd transforms, transposed kernels), cached by the weights' storage.
///
/// An entry is valid while its source storage lives and its values are unchanged (``TensorStorage/generation``),
/// so networks that run the same convolution on many levels and images derive its weights once.
package final class DerivedTensorCache: @unchecked Sendable {
    // Sendable: all state is behind the lock.
    package static let shared = DerivedTensorCache()

    private struct Entry {
        weak var source: TensorStorage?
        let generation: Int
        let value: Tensor
    }

    private struct Key: Hashable {
        let source: ObjectIdentifier
        let kind: String
    }

    private var entries: [Key: Entry] = [:]
    private let lock = PthreadLock()
    private let capacity = 1024

    package func value(for source: TensorStorage, kind: String, compute: () -> Tensor) -> Tensor {
        let key = Key(source: ObjectIdentifier(source), kind: kind)
        if let entry = lock.withLock({ entries[key] }), entry.source === source, entry.generation == source.generation {
            return entry.value
        }
        let value = compute()
        lock.withLock {
            if entries.count >= capacity { entries = entries.filter { $0.value.source != nil } }
            if entries.count >= capacity { entries.removeAll() }
            entries[key] = Entry(source: source, generation: source.generation, value: value)
        }
        return value
    }
}

/// A pthread mutex owned by one object.
package final class PthreadLock: @unchecked Sendable {
    // Sendable: the mutex itself serializes access.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    package init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
