import Engine

/// Wall-clock timing of repeated runs: warm-up, then the median (and min, max) of timed runs.
public struct Timing: Sendable, Codable {
    public var minimum: Double
    public var median: Double
    public var maximum: Double
    public var runs: Int

    /// Times `body` `runs` times after `warmups` untimed runs; seconds.
    public static func measure(warmups: Int = 1, runs: Int = 5, _ body: () -> Void) -> Timing {
        for _ in 0..<warmups { body() }
        var seconds: [Double] = []
        for _ in 0..<max(runs, 1) {
            let watch = Stopwatch()
            body()
            seconds.append(watch.seconds)
        }
        seconds.sort()
        return Timing(minimum: seconds.first!, median: seconds[seconds.count / 2], maximum: seconds.last!, runs: seconds.count)
    }
}

/// Keeps the optimizer from removing work whose result is otherwise unused.
@inline(never)
public func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}
