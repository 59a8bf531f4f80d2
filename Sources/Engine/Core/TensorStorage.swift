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
/// unmap them and fault the pages in again on the next image (about a quarter of PyTorch's forward time here). But
/// some sizes change from image to image (candidate counts), and a cache that kept every size it saw would grow
/// towards its cap with no gain. So the cache earns its memory:
///
/// - Work is cut into epochs (``endEpoch()``: the runner ends one per image). A size not taken for
///   `ODAM_POOL_EPOCHS` epochs (default 2; 0 keeps sizes forever) is freed at the end of an epoch.
/// - The cache holds at most twice the working set, the most bytes live at once in the current or the previous
///   epoch (at least 64 MiB), unless `ODAM_POOL_BYTES` sets a fixed cap.
public final class BufferPool: Sendable {
    public static let shared = BufferPool(
        limitBytes: Int(ProcessEnvironment.value("ODAM_POOL_BYTES") ?? ""),
        keptEpochs: Int(ProcessEnvironment.value("ODAM_POOL_EPOCHS") ?? "") ?? 2)

    /// The cache's floor when its cap follows the working set.
    static let minimumLimitBytes = 64 << 20

    private struct State {
        // Addresses, so that the state stays Sendable.
        var free: [Int: [UInt]] = [:]
        /// The epoch in which each size was last taken.
        var lastTaken: [Int: Int] = [:]
        var epoch = 0
        var cachedBytes = 0
        var liveBytes = 0
        var peakLiveBytes = 0
        /// The most bytes live at once in the current epoch and in the previous one.
        var epochPeakBytes = 0
        var previousEpochPeakBytes = 0
    }
    private let state: Mutex<State>
    private let fixedLimitBytes: Int?
    private let keptEpochs: Int

    package init(limitBytes: Int?, keptEpochs: Int = 2) {
        self.fixedLimitBytes = limitBytes
        self.keptEpochs = max(0, keptEpochs)
        self.state = Mutex(State())
    }

    private static let alignment = 64

    private func limit(_ state: State) -> Int {
        fixedLimitBytes ?? max(Self.minimumLimitBytes, 2 * max(state.epochPeakBytes, state.previousEpochPeakBytes))
    }

    package func take(count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = count * MemoryLayout<Float>.stride
        let reused: UInt? = state.withLock { state in
            state.liveBytes += bytes
            state.peakLiveBytes = max(state.peakLiveBytes, state.liveBytes)
            state.epochPeakBytes = max(state.epochPeakBytes, state.liveBytes)
            state.lastTaken[count] = state.epoch
            guard var list = state.free[count], let address = list.popLast() else { return nil }
            state.free[count] = list.isEmpty ? nil : list
            state.cachedBytes -= bytes
            return address
        }
        if let reused { return UnsafeMutablePointer(bitPattern: reused)! }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 4), alignment: Self.alignment)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    package func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = count * MemoryLayout<Float>.stride
        let address = UInt(bitPattern: pointer)
        let keep = state.withLock { state -> Bool in
            state.liveBytes -= bytes
            guard state.cachedBytes + bytes <= limit(state), bytes >= 4096 else { return false }
            state.free[count, default: []].append(address)
            state.cachedBytes += bytes
            return true
        }
        if !keep { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    /// Ends an epoch (the runner: one image): sizes not taken for the last `ODAM_POOL_EPOCHS` epochs are freed, and
    /// the cache is cut to its cap (largest sizes first) when the working set shrank.
    public func endEpoch() {
        let released = state.withLock { state -> [UInt] in
            state.epoch += 1
            state.previousEpochPeakBytes = state.epochPeakBytes
            state.epochPeakBytes = state.liveBytes
            var released: [UInt] = []
            func release(_ count: Int) {
                guard let list = state.free.removeValue(forKey: count) else { return }
                released += list
                state.cachedBytes -= list.count * count * MemoryLayout<Float>.stride
            }
            if keptEpochs > 0 {
                for (count, epoch) in state.lastTaken where state.epoch - epoch > keptEpochs {
                    release(count)
                    state.lastTaken[count] = nil
                }
            }
            let cap = limit(state)
            if state.cachedBytes > cap {
                for count in state.free.keys.sorted(by: >) where state.cachedBytes > cap { release(count) }
            }
            return released
        }
        for address in released { UnsafeMutableRawPointer(bitPattern: address)!.deallocate() }
    }

    /// Frees every cached buffer (a worker near its memory limit); the next images allocate afresh.
    public func releaseCache() {
        let released = state.withLock { state -> [UInt] in
            let all = state.free.values.flatMap { $0 }
            state.free = [:]
            state.cachedBytes = 0
            return all
        }
        for address in released { UnsafeMutableRawPointer(bitPattern: address)!.deallocate() }
    }

    /// Bytes held by live tensors now, and the most held at once since the last ``resetPeak()``.
    public var liveBytes: Int { state.withLock { $0.liveBytes } }
    public var peakLiveBytes: Int { state.withLock { $0.peakLiveBytes } }
    public func resetPeak() { state.withLock { $0.peakLiveBytes = $0.liveBytes } }
    /// Bytes of free buffers the cache holds now.
    public var cachedBytes: Int { state.withLock { $0.cachedBytes } }
}

/// Reads environment variables without Foundation.
public enum ProcessEnvironment {
    public static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }
}
