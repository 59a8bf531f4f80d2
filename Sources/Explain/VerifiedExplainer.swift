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
    /// Behind FCOS's reversed head: plain autograd (one seed per backward pass) that samples of the maps the reference
    /// (the batched exact path) made are checked against, as the exact path's are; nil leaves them unchecked.
    public var exactChecker: (any PredictionExplainer)?
    /// Predictions recomputed per level (spread over the level's predictions by position, first and last included).
    public var samplesPerLevel: Int
    /// Behind FCOS's reversed head: the predictions of each level with the highest error estimates, checked as well,
    /// so that the maps the estimate ranks worst are among those compared with the reference.
    public var highestEstimateSamples = 2
    /// Behind FCOS's reversed head: predictions of each level whose estimates are taken first; a level where one of
    /// them exceeds ``errorLimit`` is computed by the reference outright (its estimates vary little within a level,
    /// so the reversed head's pass and the samples would be spent on maps that end up exact anyway).
    public var probesPerLevel = 2
    /// The lowest Pearson r between a sampled map and its reference that a level may show.
    public var threshold: Float
    /// For FCOS's reversed head: a prediction whose dropped GroupNorm terms (``FCOSReversedHead/explainEstimatingError``)
    /// exceed this share of the kept gradient, for any target, is computed by the reference up front; the others stand
    /// if their level's samples (spread, and the highest estimates) agree with the reference.
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
        // Positions whose maps are exact already; the reversed head is the only approximate primary.
        // Behind an exact primary (the batched exact path) every map counts as made exactly, and the reference
        // (plain autograd) is what its samples are checked against, as the checker does behind the reversed head.
        let primaryIsExact = !(primary is FCOSReversedHead)
        let checker = primaryIsExact ? reference : exactChecker
        let (made, estimates, computedExactly) =
            if let head = primary as? FCOSReversedHead {
                windowedMaps(head, trace: trace, result: result, image: image, predictions: predictions, targets: targets)
            } else {
                (
                    primary.explain(trace: trace, result: result, image: image, predictions: predictions, targets: targets), [Float](),
                    Set(predictions.indices)
                )
            }
        var maps = made
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        // Samples among the primary's maps (those computed by the reference from the start need no check): spread by
        // position, and behind the reversed head also those it estimates worst.
        // The maps the reference made up front are sampled against the exact checker, where there is one.
        // The reversed head's samples are checked on every target (its error differs by target); the samples of
        // batched exact maps on one target per level, the targets taken in turn over the image's levels, since what
        // they can get wrong (seeds mixed within a pass) does not depend on the target. The checker then records each
        // level's head once.
        var exactTurn = 0
        let samples = byLevel.sorted { $0.key < $1.key }.map {
            level, members -> (level: Int, open: [Int], exact: [(member: Int, target: ExplanationTarget)]) in
            let open = members.filter { !computedExactly.contains($0) }
            var chosen = Self.spread(open, count: samplesPerLevel)
            if !estimates.isEmpty {
                let worst = open.sorted { (estimates[$0], $1) > (estimates[$1], $0) }.prefix(highestEstimateSamples)
                chosen += worst.filter { !chosen.contains($0) }
            }
            let exactMembers = checker == nil ? [] : Self.spread(members.filter { computedExactly.contains($0) }, count: samplesPerLevel)
            let target = targets[exactTurn % targets.count]
            if !exactMembers.isEmpty { exactTurn += 1 }
            let exact = exactMembers.map { (member: $0, target: target) }
            return (level, chosen, exact)
        }
        func checked(by explainer: (any PredictionExplainer)?, _ members: [Int], targets: [ExplanationTarget])
            -> [Int: [ExplanationTarget: HeatMap]]
        {
            guard let explainer, !members.isEmpty else { return [:] }
            let made = explainer.explain(
                trace: trace, result: result, image: image, predictions: members.map { predictions[$0] }, targets: targets)
            return Dictionary(uniqueKeysWithValues: zip(members, made))
        }
        let referenceMaps = checked(by: reference, samples.flatMap(\.open), targets: targets)
        // One pass of the checker per target, over the samples that target was given to.
        var checkerMaps: [Int: [ExplanationTarget: HeatMap]] = [:]
        for target in targets {
            let members = samples.flatMap(\.exact).filter { $0.target == target }.map(\.member)
            for (member, made) in checked(by: checker, members, targets: [target]) {
                checkerMaps[member, default: [:]][target] = made[target]
            }
        }
        var agreement: [LevelAgreement] = []
        for (level, open, exactSamples) in samples {
            func correlations(_ members: [Int], _ against: [Int: [ExplanationTarget: HeatMap]]) -> [Float] {
                members.flatMap { member in targets.map { Self.pearson(maps[member][$0]!.raw, against[member]![$0]!.raw) } }
            }
            let exactR = exactSamples.map { Self.pearson(maps[$0.member][$0.target]!.raw, checkerMaps[$0.member]![$0.target]!.raw) }
            let openR = correlations(open, referenceMaps)
            let all = (openR + exactR).sorted()
            let minimum = all.first ?? 1
            let count = byLevel[level]!.count
            let fails = minimum < threshold
            if fails {
                // The reversed head's maps by the reference; the reference's own, if their samples failed, by the checker.
                // The sampled ones are the reference's already.
                let rest = byLevel[level]!.filter { !computedExactly.contains($0) && referenceMaps[$0] == nil }
                for member in open { maps[member] = referenceMaps[member]! }
                for (member, map) in checked(by: reference, rest, targets: targets) { maps[member] = map }
                if let low = exactR.min(), low < threshold {
                    let members = byLevel[level]!.filter { computedExactly.contains($0) }
                    for (member, map) in checked(by: checker, members, targets: targets) { maps[member] = map }
                }
            }
            agreement.append(
                LevelAgreement(
                    level: level, predictions: count, sampled: open.count + exactSamples.count, minR: minimum,
                    medianR: all.isEmpty ? 1 : all[all.count / 2], recomputed: fails,
                    exact: fails || primaryIsExact ? count : byLevel[level]!.filter { computedExactly.contains($0) }.count))
        }
        return (maps, agreement)
    }

    /// The reversed head's maps where its error estimates allow them, the reference's elsewhere: levels whose probes
    /// exceed ``errorLimit`` go to the reference outright, then each map above it. Each position's largest estimate
    /// over its targets (infinity where the reference made the map) and the positions the reference made.
    func windowedMaps(
        _ head: FCOSReversedHead, trace: ForwardTrace, result: ImageDetections, image: Int, predictions: [Int],
        targets: [ExplanationTarget]
    ) -> (maps: [[ExplanationTarget: HeatMap]], estimates: [Float], computedExactly: Set<Int>) {
        // NaN (no estimate) stays NaN, so that the limit flags it.
        func largest(_ errors: [ExplanationTarget: Float]) -> Float {
            errors.values.reduce(Float(0)) { $0.isNaN || $1.isNaN ? .nan : max($0, $1) }
        }
        func level(_ i: Int) -> Int { result.candidates[predictions[i]].level }
        let probes = Dictionary(grouping: predictions.indices, by: level).values.flatMap { Self.spread($0, count: probesPerLevel) }
        let probed = head.explainEstimatingError(
            trace: trace, result: result, image: image, predictions: probes.map { predictions[$0] }, targets: targets
        ).errors.map(largest)
        let exactLevels = Set(zip(probes, probed).filter { !($1 <= errorLimit) }.map { level($0.0) })
        let windowed = predictions.indices.filter { !exactLevels.contains(level($0)) }
        let estimated = head.explainEstimatingError(
            trace: trace, result: result, image: image, predictions: windowed.map { predictions[$0] }, targets: targets)
        var maps = [[ExplanationTarget: HeatMap]](repeating: [:], count: predictions.count)
        var estimates = [Float](repeating: .infinity, count: predictions.count)
        for (position, i) in windowed.enumerated() {
            maps[i] = estimated.maps[position]
            estimates[i] = largest(estimated.errors[position])
        }
        let flagged = predictions.indices.filter { !(estimates[$0] <= errorLimit) }
        if !flagged.isEmpty {
            let exact = reference.explain(
                trace: trace, result: result, image: image, predictions: flagged.map { predictions[$0] }, targets: targets)
            for (i, map) in zip(flagged, exact) { maps[i] = map }
        }
        return (maps, estimates, Set(flagged))
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
