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

    /// FCOS with `weights` (random weights, 91 classes, when nil), keeping its tower layers, on a random image of
    /// `size`: the forward pass timed, and its trace and result.
    static func timedForward(model: String, weights: String?, size: (Int, Int), runs: Int) throws -> (
        FCOS, ForwardTrace, ImageDetections, Timing
    ) {
        var spec = try ModelSpec.resolve(model)
        spec.minSize = min(size.0, size.1)
        spec.maxSize = max(size.0, size.1)
        let built = try weights.map { try spec.load(weights: $0) } ?? spec.build(classCount: 91)
        guard let detector = built as? FCOS else { throw ModelError("this benchmark needs an FCOS model") }
        var random = RandomNumbers(seed: 9)
        let image = random.uniform([3, size.0, size.1], 0, 1)
        var trace: ForwardTrace? = nil
        var result: ImageDetections? = nil
        let forward = Timing.measure(warmups: 1, runs: runs) {
            withoutGradients {
                var timings = StageTimings()
                let output = detector.forward(detector.transform.batch([image]), keeping: .towerLayers, timings: &timings)
                trace = output.trace
                result = output.results[0]
            }
        }
        return (detector, trace!, result!, forward)
    }

    public static func run(model: String, weights: String? = nil, sizes: [(Int, Int)], counts: [Int], exactCounts: [Int], runs: Int) throws
        -> [Row]
    {
        var rows: [Row] = []
        for (height, width) in sizes {
            let (detector, trace, result, forward) = try timedForward(model: model, weights: weights, size: (height, width), runs: runs)
            for (path, sizesToRun) in [("approximate", counts), ("exact", exactCounts)] {
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
                                recorded = exact.record(
                                    trace: trace.withoutRecordings(), levels: Set(chosen.candidates.map(\.level)), targets: [.logit],
                                    folding: true)
                            }.median
                    }
                    let timing = Timing.measure(warmups: path == "exact" ? 0 : 1, runs: path == "exact" ? 1 : runs) {
                        if path != "exact" {
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

    /// How the approximate path (reversed head, GroupNorm frozen) agrees with the exact path on one level.
    public struct LevelAgreementRow: Sendable, Codable {
        public var height: Int
        public var width: Int
        public var level: Int
        public var levelSize: String
        public var predictions: Int
        public var minR: Float
        public var medianR: Float
        /// The share of maps with r ≥ 0.999 and ≥ 0.99.
        public var atLeast0999: Double
        public var atLeast099: Double
        /// The reversed head's own error estimates (``FCOSReversedHead/explainEstimatingError``): the share of maps
        /// at or below the default limit (kept from the reversed head by the runner), the lowest r among them, and
        /// the lowest estimate among maps with r < 0.999.
        public var keptShare: Double
        public var keptMinR: Float
        public var lowestEstimateBelow0999: Float?
        /// The median and highest estimate of the maps with r ≥ 0.999.
        public var medianEstimateAtLeast0999: Float?
        public var highestEstimateAtLeast0999: Float?
        /// What the runner's approximate path (``VerifiedExplainer``: the limit, then the level's samples) makes of
        /// these maps: the lowest r of what it returns against exact maps, and whether it recomputed the level.
        public var runnerMinR: Float
        public var runnerRecomputed: Bool
    }

    /// The cost of exact-equivalent maps as the runner makes them (``DetectorMaps``: maps, per-level checks against
    /// plain autograd, levels recomputed where the check fails), per map path.
    public struct VerifiedRow: Sendable, Codable {
        public var path: String
        public var height: Int
        public var width: Int
        public var predictions: Int
        public var millisecondsPerPrediction: Double
        public var forwardSeconds: Double
        public var levelsRecomputed: Int
    }

    /// Approximate against exact class-logit maps, `perLevel` predictions on each level (cells spread over the level).
    public static func agreement(model: String, weights: String? = nil, sizes: [(Int, Int)], perLevel: Int) throws -> [LevelAgreementRow] {
        var rows: [LevelAgreementRow] = []
        for (height, width) in sizes {
            let (detector, trace, result, _) = try timedForward(model: model, weights: weights, size: (height, width), runs: 1)
            var chosen = result
            chosen.candidates = candidates(perLevel * trace.pyramid.count, levels: trace.pyramid, classes: detector.classCount)
            let predictions = Array(chosen.candidates.indices)
            let (approximate, errors) = FCOSReversedHead(detector: detector).explainEstimatingError(
                trace: trace, result: chosen, predictions: predictions, targets: [.logit])
            let exact = FCOSExplainer(detector: detector).explain(trace: trace, result: chosen, predictions: predictions, targets: [.logit])
            let runner = VerifiedExplainer(primary: FCOSReversedHead(detector: detector), reference: FCOSExplainer(detector: detector))
                .explain(trace: trace, result: chosen, predictions: predictions, targets: [.logit])
            for level in trace.pyramid.indices {
                let members = predictions.filter { chosen.candidates[$0].level == level }
                let pairs: [(r: Float, e: Float)] = members.map { member in
                    let r = VerifiedExplainer.pearson(approximate[member][.logit]!.raw, exact[member][.logit]!.raw)
                    return (r, errors[member][.logit]!)
                }
                let r = pairs.map { $0.r }.sorted()
                guard !r.isEmpty else { continue }
                let kept = pairs.filter { $0.e <= FCOSReversedHead.defaultErrorLimit }
                let good = pairs.filter { $0.r >= 0.999 }.map { $0.e }.sorted()
                rows.append(
                    LevelAgreementRow(
                        height: height, width: width, level: level,
                        levelSize: "\(trace.pyramid[level].shape[2])x\(trace.pyramid[level].shape[3])",
                        predictions: r.count, minR: r[0], medianR: r[r.count / 2],
                        atLeast0999: Double(r.filter { $0 >= 0.999 }.count) / Double(r.count),
                        atLeast099: Double(r.filter { $0 >= 0.99 }.count) / Double(r.count),
                        keptShare: Double(kept.count) / Double(r.count), keptMinR: kept.map { $0.r }.min() ?? 1,
                        lowestEstimateBelow0999: pairs.filter { $0.r < 0.999 }.map { $0.e }.min(),
                        medianEstimateAtLeast0999: good.isEmpty ? nil : good[good.count / 2], highestEstimateAtLeast0999: good.last,
                        runnerMinR: members.map { VerifiedExplainer.pearson(runner.maps[$0][.logit]!.raw, exact[$0][.logit]!.raw) }.min()
                            ?? 1,
                        runnerRecomputed: runner.agreement.first { $0.level == level }?.recomputed ?? false))
            }
        }
        return rows
    }

    /// Milliseconds per prediction of ``DetectorMaps/candidateMaps(trace:result:image:predictions:)`` for `count`
    /// predictions on each path, checks and recomputations included.
    public static func verified(
        model: String, weights: String? = nil, sizes: [(Int, Int)], counts: [Int], paths: [MapPath] = MapPath.allCases
    ) throws -> [VerifiedRow] {
        var rows: [VerifiedRow] = []
        for (height, width) in sizes {
            let (detector, trace, result, forward) = try timedForward(model: model, weights: weights, size: (height, width), runs: 1)
            for path in paths {
                let maker = try DetectorMaps(detector: detector, path: path)
                for count in counts {
                    var chosen = result
                    chosen.candidates = candidates(count, levels: trace.pyramid, classes: detector.classCount)
                    var recomputed = 0
                    // Each path records the head afresh, as the runner does once per image.
                    let fresh = trace.withoutRecordings()
                    let timing = Timing.measure(warmups: 0, runs: 1) {
                        let output = maker.candidateMaps(trace: fresh, result: chosen, predictions: Array(chosen.candidates.indices))
                        recomputed = output.agreement.filter(\.recomputed).count
                        blackHole(output.maps)
                    }
                    rows.append(
                        VerifiedRow(
                            path: path.rawValue, height: height, width: width, predictions: count,
                            millisecondsPerPrediction: timing.median * 1000 / Double(count), forwardSeconds: forward.median,
                            levelsRecomputed: recomputed))
                }
            }
        }
        return rows
    }

    public static func agreementTable(_ rows: [LevelAgreementRow]) -> String {
        var lines = [
            pad("size", 10) + pad("level", 7) + pad("grid", 9) + pad("maps", 6) + pad("min r", 9) + pad("median r", 10) + pad("r≥0.999", 9)
                + pad("r≥0.99", 8) + pad("under the limit", 18) + pad("their min r", 13) + pad("estimates r≥0.999 (median, max)", 34)
                + pad("lowest estimate r<0.999", 25) + "runner's maps: min r, level recomputed"
        ]
        for row in rows {
            lines.append(
                pad("\(row.height)x\(row.width)", 10) + pad("P\(row.level + 3)", 7) + pad(row.levelSize, 9) + pad("\(row.predictions)", 6)
                    + pad(fixed(Double(row.minR), 4), 9) + pad(fixed(Double(row.medianR), 4), 10)
                    + pad(fixed(100 * row.atLeast0999, 0) + "%", 9)
                    + pad(fixed(100 * row.atLeast099, 0) + "%", 8) + pad(fixed(100 * row.keptShare, 0) + "%", 18)
                    + pad(fixed(Double(row.keptMinR), 4), 13)
                    + pad(
                        (row.medianEstimateAtLeast0999.map { fixed(Double($0), 4) } ?? "-") + ", "
                            + (row.highestEstimateAtLeast0999.map { fixed(Double($0), 4) } ?? "-"), 34)
                    + pad(row.lowestEstimateBelow0999.map { fixed(Double($0), 4) } ?? "-", 25)
                    + fixed(Double(row.runnerMinR), 4) + (row.runnerRecomputed ? ", recomputed" : ", kept"))
        }
        return lines.joined(separator: "\n")
    }

    public static func verifiedTable(_ rows: [VerifiedRow]) -> String {
        var lines = [
            pad("path", 13) + pad("size", 10) + pad("predictions", 13) + pad("ms/prediction", 15) + pad("forward s", 11)
                + "levels recomputed"
        ]
        for row in rows {
            lines.append(
                pad(row.path, 13) + pad("\(row.height)x\(row.width)", 10) + pad("\(row.predictions)", 13)
                    + pad(fixed(row.millisecondsPerPrediction, 2), 15) + pad(fixed(row.forwardSeconds, 3), 11) + "\(row.levelsRecomputed)")
        }
        return lines.joined(separator: "\n")
    }

    public static func table(_ rows: [Row]) -> String {
        var lines = [
            pad("path", 13) + pad("size", 10) + pad("predictions", 13) + pad("ms/prediction", 15) + pad("forward s", 11) + "recorded head s"
        ]
        for row in rows {
            lines.append(
                pad(row.path, 13) + pad("\(row.height)x\(row.width)", 10) + pad("\(row.predictions)", 13)
                    + pad(fixed(row.millisecondsPerPrediction, 2), 15) + pad(fixed(row.forwardSeconds, 3), 11)
                    + (row.path == "exact" ? fixed(row.recordSeconds, 3) : "-"))
        }
        return lines.joined(separator: "\n")
    }
}
