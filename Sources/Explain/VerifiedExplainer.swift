public import Detection
import Engine

/// Heat maps from a primary explainer, checked where they are made: for each FPN level, a few of its predictions
/// are recomputed by a reference explainer (plain autograd, one seed per backward pass) and compared map by map.
/// A level whose agreement falls below `threshold` is recomputed by the reference for all its predictions and
/// flagged, so that what comes out is exact, or verified against exact on the same image.
public struct VerifiedExplainer {
    /// What makes the maps: the batched exact path, or an approximation (FCOS's reversed head).
    public var primary: any PredictionExplainer
    /// The exact computation the samples are checked against (and a failing level recomputed with).
    public var reference: any PredictionExplainer
    /// Predictions recomputed per level (spread over the level's predictions by position, first and last included).
    public var samplesPerLevel: Int
    /// The lowest Pearson r between a sampled map and its reference that a level may show.
    public var threshold: Float
    /// For FCOS's reversed head: a prediction whose dropped GroupNorm terms (``FCOSReversedHead/explainEstimatingError``)
    /// exceed this share of the kept gradient, for any target, is computed by the reference instead.
    public var errorLimit: Float = FCOSReversedHead.defaultErrorLimit

    public init(primary: any PredictionExplainer, reference: any PredictionExplainer, samplesPerLevel: Int = 2, threshold: Float = 0.999) {
        self.primary = primary
        self.reference = reference
        self.samplesPerLevel = samplesPerLevel
        self.threshold = threshold
    }

    /// How one level's maps agreed with the reference on one image.
    public struct LevelAgreement: Sendable, Codable, Equatable {
        public var level: Int
        public var predictions: Int
        public var sampled: Int
        /// The lowest and the median Pearson r of the sampled (prediction, target) maps against the reference.
        public var minR: Float
        public var medianR: Float
        /// Whether the level fell below the threshold and all its maps were recomputed by the reference.
        public var recomputed: Bool
        /// Predictions whose maps are exact: all of them behind a batched exact primary; behind FCOS's reversed head
        /// those whose error estimate exceeded ``VerifiedExplainer/errorLimit`` (all when `recomputed`).
        public var exact: Int

        enum CodingKeys: String, CodingKey {
            case level, predictions, sampled, recomputed, exact
            case minR = "min_r"
            case medianR = "median_r"
        }
    }

    /// Maps of `predictions` (indices into `result.candidates`) for each target, and the agreement per level.
    public func explain(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> (maps: [[ExplanationTarget: HeatMap]], agreement: [LevelAgreement]) {
        var maps: [[ExplanationTarget: HeatMap]]
        // Positions whose maps are exact already; the reversed head is the only approximate primary.
        var computedExactly = Set<Int>()
        let primaryIsExact = !(primary is FCOSReversedHead)
        if let head = primary as? FCOSReversedHead {
            let estimated = head.explainEstimatingError(
                trace: trace, result: result, image: image, predictions: predictions, targets: targets)
            maps = estimated.maps
            let flagged = predictions.indices.filter { i in estimated.errors[i].values.contains { !($0 <= errorLimit) } }
            if !flagged.isEmpty {
                let exact = reference.explain(
                    trace: trace, result: result, image: image, predictions: flagged.map { predictions[$0] }, targets: targets)
                for (i, map) in zip(flagged, exact) { maps[i] = map }
                computedExactly = Set(flagged)
            }
        } else {
            maps = primary.explain(trace: trace, result: result, image: image, predictions: predictions, targets: targets)
        }
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        // Samples among the primary's maps (those computed by the reference from the start need no check).
        let samples = byLevel.sorted { $0.key < $1.key }.map { level, members in
            (level, Self.spread(members.filter { !computedExactly.contains($0) }, count: samplesPerLevel))
        }
        let sampled = samples.flatMap(\.1)
        let checked = reference.explain(
            trace: trace, result: result, image: image, predictions: sampled.map { predictions[$0] }, targets: targets)
        let referenceMaps = Dictionary(uniqueKeysWithValues: zip(sampled, checked))
        var agreement: [LevelAgreement] = []
        for (level, members) in samples {
            var correlations: [Float] = []
            for member in members {
                for target in targets {
                    correlations.append(Self.pearson(maps[member][target]!.raw, referenceMaps[member]![target]!.raw))
                }
            }
            correlations.sort()
            let minimum = correlations.first ?? 1
            let count = byLevel[level]!.count
            let fails = minimum < threshold
            if fails {
                // Only the maps not already computed by the reference.
                let rest = byLevel[level]!.filter { !computedExactly.contains($0) }
                let exact = reference.explain(
                    trace: trace, result: result, image: image, predictions: rest.map { predictions[$0] }, targets: targets)
                for (member, map) in zip(rest, exact) { maps[member] = map }
            }
            agreement.append(
                LevelAgreement(
                    level: level, predictions: count, sampled: members.count, minR: minimum,
                    medianR: correlations.isEmpty ? 1 : correlations[correlations.count / 2], recomputed: fails,
                    exact: fails || primaryIsExact ? count : byLevel[level]!.filter { computedExactly.contains($0) }.count))
        }
        return (maps, agreement)
    }

    /// `count` of `members` spread evenly by position, the first and the last included.
    static func spread(_ members: [Int], count: Int) -> [Int] {
        guard members.count > count, count > 1 else { return Array(members.prefix(max(count, 0))) }
        return (0..<count).map { members[$0 * (members.count - 1) / (count - 1)] }
    }

    /// Pearson's r of two maps of the same shape: 1 when both are constant and equal, 0 when only one is constant.
    public static func pearson(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.shape == b.shape, "maps of different shapes")
        let x = a.scalars, y = b.scalars
        let n = Double(max(x.count, 1))
        var mx = 0.0, my = 0.0
        for i in 0..<x.count {
            mx += Double(x[i])
            my += Double(y[i])
        }
        mx /= n
        my /= n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<x.count {
            let dx = Double(x[i]) - mx, dy = Double(y[i]) - my
            sxy += dx * dy
            sxx += dx * dx
            syy += dy * dy
        }
        if sxx == 0 || syy == 0 { return sxx == syy && x == y ? 1 : 0 }
        return Float(sxy / (sxx * syy).squareRoot())
    }
}
