import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The owner of one float32 buffer.
///
/// Buffers come from ``BufferPool`` and go back to it in `deinit`, so that a network run twice on images of one
/// size reuses its activation buffers instead of faulting fresh pages in from the kernel on every call.
public final class TensorStorage: @unchecked Sendable {
    // Sendable: a storage is written only while uniquely referenced (copy-on-write in `Tensor`).
    public let base: UnsafeMutablePointer<Float>
    public let count: Int
    /// Bumped whenever the values are written through a tensor, so caches derived from them (for example Winograd
    /// weight transforms) know when they are stale.
    public private(set) var generation = 0

    package func markWritten() { generation &+= 1 }

    /// Uninitialized storage for `count` floats.
    public init(uninitializedCount count: Int) {
        self.count = count
        self.base = BufferPool.shared.take(count: count)
    }

    /// Zero-filled storage for `count` floats.
    public convenience init(zeroedCount count: Int) {
        self.init(uninitializedCount: count)
        self.base.initialize(repeating: 0, count: count)
    }

    deinit {
        BufferPool.shared.give(base, count: count)
    }

    @inline(__always)
    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }
}

/// A caching allocator of float buffers, keyed by exact element count.
///
/// Detection networks allocate the same sizes on every image; returning those buffers to glibc would have it
/// unmap them and fault the pages in again on the next image (about a quarter of PyTorch's forward time here).
/// The cache is bounded by `ODAM_POOL_BYTES` (default 8 GiB); beyond it buffers are freed.
public final class BufferPool: Sendable {
    public static let shared = BufferPool(
        limitBytes: Int(ProcessEnvironment.value("ODAM_POOL_BYTES") ?? "") ?? (8 << 30))

    private struct State {
        // Addresses, so that the state stays Sendable.
        var free: [Int: [UInt]] = [:]
        var cachedBytes = 0
        var liveBytes = 0
        var peakLiveBytes = 0
    }
    private let state: Mutex<State>
    private let limitBytes: Int

    init(limitBytes: Int) {
        self.limitBytes = limitBytes
        self.state = Mutex(State())
    }

    private static let alignment = 64

    func take(count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = count * MemoryLayout<Float>.stride
        let reused: UInt? = state.withLock { state in
            state.liveBytes += bytes
            state.peakLiveBytes = max(state.peakLiveBytes, state.liveBytes)
            guard var list = state.free[count], let address = list.popLast() else { return nil }
            state.free[count] = list.isEmpty ? nil : list
            state.cachedBytes -= bytes
            return address
        }
        if let reused { return UnsafeMutablePointer(bitPattern: reused)! }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 4), alignment: Self.alignment)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = count * MemoryLayout<Float>.stride
        let address = UInt(bitPattern: pointer)
        let keep = state.withLock { state -> Bool in
            state.liveBytes -= bytes
            guard state.cachedBytes + bytes <= limitBytes, bytes >= 4096 else { return false }
            state.free[count, default: []].append(address)
            state.cachedBytes += bytes
            return true
        }
        if !keep { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    /// Bytes held by live tensors now, and the most held at once since the last ``resetPeak()``.
    public var liveBytes: Int { state.withLock { $0.liveBytes } }
    public var peakLiveBytes: Int { state.withLock { $0.peakLiveBytes } }
    public func resetPeak() { state.withLock { $0.peakLiveBytes = $0.liveBytes } }
}

/// Reads environment variables without Foundation.
public enum ProcessEnvironment {
    public static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }
}
