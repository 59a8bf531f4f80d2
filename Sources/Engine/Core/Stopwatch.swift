import Dispatch

/// Elapsed wall-clock time on the monotonic clock, from the moment the stopwatch was made (or last restarted): the one
/// timing helper of every module.
public struct Stopwatch: Sendable {
    private var start = DispatchTime.now().uptimeNanoseconds

    public init() {}

    /// Nanoseconds since the start.
    public var nanoseconds: UInt64 { DispatchTime.now().uptimeNanoseconds - start }
    /// Seconds since the start.
    public var seconds: Double { Double(nanoseconds) / 1e9 }
    /// Milliseconds since the start.
    public var milliseconds: Double { Double(nanoseconds) / 1e6 }

    /// Starts again from now; the milliseconds up to now.
    public mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { start = now }
        return Double(now - start) / 1e6
    }

    /// Runs `body`; its result and the milliseconds it took.
    public static func time<R>(_ body: () throws -> R) rethrows -> (result: R, milliseconds: Double) {
        let watch = Stopwatch()
        let result = try body()
        return (result, watch.milliseconds)
    }
}
