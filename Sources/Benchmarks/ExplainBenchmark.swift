import Detection
import Engine
import Explain
import NN
import Vision

/// `odam bench explain`: milliseconds per prediction of each ODAM path, with the forward time beside it.
public enum ExplainBenchmark {
    public struct Row: Sendable, Codable {
        public var path: String
        public var height: Int
        public var width: Int
        public var predictions: Int
        public var millisecondsPerPrediction: Double
        public var forwardSeconds: Double
        /// Exact path: the once-per-image head pass with gradient recording on the levels used.
        public var recordSeconds: Double
    }

    /// Predictions placed as the PyTorch reference (perf-anchors.md §2): level i mod 5 (a single prediction sits at
    /// the centre of P3), a golden-ratio position inside the level, class (37i + 1) mod classes.
    static func candidates(_ count: Int, levels: [Tensor], classes: Int) -> [Candidate] {
        (0..<count).map { i in
            let level = i % levels.count
            let height = levels[level].shape[2], width = levels[level].shape[3]
            let position =
                count == 1
                ? (height / 2) * width + width / 2
                : Int((Double(i) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1) * Double(height * width))
            return Candidate(
                box: [0, 0, 1, 1], score: 0.5, label: (37 * i + 1) % classes, level: level, row: position / width,
                column: position % width, anchor: 0)
        }
    }

    /// FCOS with random weights (91 classes, keeping its tower layers) on a random image of `size`: the forward
    /// pass timed, and its trace and result.
    static func timedForward(model: String, size: (Int, Int), runs: Int) throws -> (FCOS, ForwardTrace, ImageDetections, Timing) {
        var spec = try ModelSpec.resolve(model)
        spec.minSize = min(size.0, size.1)
        spec.maxSize = max(size.0, size.1)
        guard let detector = try spec.build(classCount: 91) as? FCOS else { throw ModelError("this benchmark needs an FCOS model") }
        detector.keepsTowerLayers = true
        var random = RandomNumbers(seed: 9)
        let image = random.uniform([3, size.0, size.1], 0, 1)
        var trace: ForwardTrace? = nil
        var result: ImageDetections? = nil
        let forward = Timing.measure(warmups: 1, runs: runs) {
            withoutGradients {
                var timings = StageTimings()
                let output = detector.forward(detector.transform.batch([image]), timings: &timings)
                trace = output.trace
                result = output.results[0]
            }
        }
        return (detector, trace!, result!, forward)
    }

    public static func run(model: String, sizes: [(Int, Int)], counts: [Int], exactCounts: [Int], runs: Int) throws -> [Row] {
        var rows: [Row] = []
        for (height, width) in sizes {
            let (detector, trace, result, forward) = try timedForward(model: model, size: (height, width), runs: runs)
            for (path, sizesToRun) in [("fast", counts), ("exact", exactCounts)] {
                for count in sizesToRun {
                    var chosen = result
                    chosen.candidates = candidates(count, levels: trace.pyramid, classes: detector.classCount)
                    let predictions = Array(chosen.candidates.indices)
                    // The exact path's recorded head pass is paid once per image, as PyTorch's grad-enabled forward;
                    // it is timed apart (recordSeconds) and the per-prediction time is the backward and the map.
                    let exact = FCOSExplainer(detector: detector)
                    var recorded: [Int: FCOSExplainer.RecordedLevel] = [:]
                    var recordSeconds = 0.0
                    if path == "exact" {
                        recordSeconds =
                            Timing.measure(warmups: 0, runs: 1) {
                                recorded = exact.record(trace: trace, levels: Set(chosen.candidates.map(\.level)), targets: [.logit])
                            }.median
                    }
                    let timing = Timing.measure(warmups: path == "fast" ? 1 : 0, runs: path == "fast" ? runs : 1) {
                        if path == "fast" {
                            blackHole(
                                FCOSReversedHead(detector: detector).explain(
                                    trace: trace, result: chosen, predictions: predictions, targets: [.logit]))
                        } else {
                            blackHole(exact.explain(recorded, trace: trace, result: chosen, predictions: predictions, targets: [.logit]))
                        }
                    }
                    rows.append(
                        Row(
                            path: path, height: height, width: width, predictions: count,
                            millisecondsPerPrediction: timing.median * 1000 / Double(count), forwardSeconds: forward.median,
                            recordSeconds: recordSeconds))
                }
            }
        }
        return rows
    }

    public static func table(_ rows: [Row]) -> String {
        var lines = [
            pad("path", 7) + pad("size", 10) + pad("predictions", 13) + pad("ms/prediction", 15) + pad("forward s", 11) + "recorded head s"
        ]
        for row in rows {
            lines.append(
                pad(row.path, 7) + pad("\(row.height)x\(row.width)", 10) + pad("\(row.predictions)", 13)
                    + pad(fixed(row.millisecondsPerPrediction, 2), 15) + pad(fixed(row.forwardSeconds, 3), 11)
                    + (row.path == "exact" ? fixed(row.recordSeconds, 3) : "-"))
        }
        return lines.joined(separator: "\n")
    }
}
