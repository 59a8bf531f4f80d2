import Detection
import Engine
import NN
import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// `odam bench detect`: the forward time of each detector on one image, per stage, and its peak memory.
public enum DetectBenchmark {
    public struct Row: Sendable, Codable {
        public var model: String
        public var height: Int
        public var width: Int
        public var total: Timing
        /// Median seconds per stage.
        public var stages: [String: Double]
        /// Most tensor memory alive at once during a forward pass.
        public var peakTensorBytes: Int
        /// The process's peak resident set size so far.
        public var peakResidentBytes: Int
    }

    /// Times `models` (builder names or specs, with random weights, or with a checkpoint) at each size. The network
    /// runs at exactly `height`×`width`: the transform's min and max sizes are set to the image's sides, as the
    /// PyTorch reference script does.
    public static func run(models: [(name: String, spec: ModelSpec, weights: String?)], sizes: [(Int, Int)], runs: Int) throws -> [Row] {
        var rows: [Row] = []
        for (name, modelSpec, weights) in models {
            var spec = modelSpec
            for (height, width) in sizes {
                spec.minSize = min(height, width)
                spec.maxSize = max(height, width)
                let detector = try weights.map { try spec.load(weights: $0) } ?? spec.build(classCount: 91)
                var random = RandomNumbers(seed: 5)
                let image = random.uniform([3, height, width], 0, 1)
                var samples: [StageTimings] = []
                BufferPool.shared.resetPeak()
                let timing = Timing.measure(warmups: 1, runs: runs) {
                    var timings = StageTimings()
                    blackHole(detector.detect([image], timings: &timings))
                    samples.append(timings)
                }
                let timed = samples.suffix(runs)
                var stages: [String: Double] = [:]
                for stage in StageTimings.Stage.allCases {
                    let values = timed.map { $0.seconds[stage] ?? 0 }.sorted()
                    stages[stage.rawValue] = values[values.count / 2]
                }
                rows.append(
                    Row(
                        model: name, height: height, width: width, total: timing, stages: stages,
                        peakTensorBytes: BufferPool.shared.peakLiveBytes, peakResidentBytes: peakResidentBytes()))
            }
        }
        return rows
    }

    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    public static func table(_ rows: [Row]) -> String {
        var lines = [
            pad("model", 26) + pad("size", 10) + pad("median s", 10) + pad("backbone", 10) + pad("fpn", 8) + pad("head", 8)
                + pad("post", 8) + pad("transform", 10) + pad("peak tensors", 14) + "peak RSS"
        ]
        for row in rows {
            let s = row.stages
            lines.append(
                pad(row.model, 26) + pad("\(row.height)x\(row.width)", 10) + pad(fixed(row.total.median, 3), 10)
                    + pad(fixed(s["backbone"] ?? 0, 3), 10) + pad(fixed(s["fpn"] ?? 0, 3), 8) + pad(fixed(s["head"] ?? 0, 3), 8)
                    + pad(fixed(s["postprocess"] ?? 0, 3), 8) + pad(fixed(s["transform"] ?? 0, 3), 10)
                    + pad(fixed(Double(row.peakTensorBytes) / 1_073_741_824, 2) + " GiB", 14)
                    + fixed(Double(row.peakResidentBytes) / 1_073_741_824, 2) + " GiB")
        }
        return lines.joined(separator: "\n")
    }
}
