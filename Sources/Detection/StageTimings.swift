import Engine

/// Seconds spent in each stage of a detector's forward pass.
public struct StageTimings: Sendable, Codable, Equatable {
    public enum Stage: String, Sendable, Codable, CaseIterable {
        case transform, backbone, fpn, head, postprocess
    }

    public var seconds: [Stage: Double] = [:]

    public init() {}

    public mutating func measure<R>(_ stage: Stage, _ body: () throws -> R) rethrows -> R {
        let watch = Stopwatch()
        defer { seconds[stage, default: 0] += watch.seconds }
        return try body()
    }

    public var total: Double { seconds.values.reduce(0, +) }
}
