public import Detection
import Engine

/// How the maps that odam stores and that Odam-NMS compares are computed.
public enum MapPath: String, Sendable, Codable, CaseIterable {
    /// Autograd through the real head (GroupNorm statistics included), seeds batched: ODAM as defined.
    case exact
    /// FCOS only: the reversed head on 11x11 windows with GroupNorm's statistics frozen, checked per level against
    /// exact samples, and a level that falls below r 0.999 recomputed exactly (``VerifiedExplainer``).
    case approximate
    /// The runner's default: for FCOS the approximate path, which keeps the reversed head only on levels whose error
    /// estimates are under its limit (large levels of wide models, where exact maps cost most and the approximation
    /// is closest) and computes the rest exactly; for the other detectors the exact path.
    case auto
}

/// The maps of one detector's predictions on a map path, each level checked against plain autograd on the same
/// image: what the runner and `odam eval detect` use for Odam-NMS's candidates and for the stored maps.
public struct DetectorMaps {
    public let detector: any Detector
    public let path: MapPath
    /// The path the maps are made on: `path`, except that `auto` is `exact` for detectors other than FCOS.
    public var effectivePath: MapPath { path == .auto && !(detector is FCOS) ? .exact : path }
    /// Predictions per level recomputed one seed at a time and compared (see ``VerifiedExplainer``).
    public let samplesPerLevel: Int
    let candidateExplainer: VerifiedExplainer
    let finalExplainer: VerifiedExplainer

    /// Throws when the path does not serve the detector (the approximate path is FCOS's).
    public init(detector: any Detector, path: MapPath = .exact, samplesPerLevel: Int = 2) throws {
        self.detector = detector
        self.path = path
        self.samplesPerLevel = samplesPerLevel
        // Odam-NMS's candidates: the class logit on the prediction's level; for Faster R-CNN on its RoI features
        // projected back into the proposal, as the official Odam-NMS does.
        // SSDLite: its first, 19x19 map for both (its coarser maps go down to one cell, which holds no "where").
        let finalFeature = Explainers.defaultFeature(for: detector)
        let candidateFeature: FeatureSource = detector is FasterRCNN ? .roiFeatures : finalFeature
        guard let batched = Explainers.exact(for: detector, feature: candidateFeature),
            let single = Explainers.plainAutograd(for: detector, feature: candidateFeature),
            let batchedLevel = Explainers.exact(for: detector, feature: finalFeature),
            let singleLevel = Explainers.plainAutograd(for: detector, feature: finalFeature)
        else { throw ModelError("\(type(of: detector)) has no exact ODAM explainer") }
        switch path == .auto ? (detector is FCOS ? MapPath.approximate : .exact) : path {
        case .exact:
            candidateExplainer = VerifiedExplainer(primary: batched, reference: single, samplesPerLevel: samplesPerLevel)
            finalExplainer = VerifiedExplainer(primary: batchedLevel, reference: singleLevel, samplesPerLevel: samplesPerLevel)
        case .approximate, .auto:
            guard let fcos = detector as? FCOS else {
                throw ModelError("the approximate map path is FCOS's reversed head; use the exact path for \(type(of: detector))")
            }
            let head = FCOSReversedHead(detector: fcos)
            var candidates = VerifiedExplainer(primary: head, reference: batched, samplesPerLevel: samplesPerLevel)
            var finals = VerifiedExplainer(primary: head, reference: batchedLevel, samplesPerLevel: samplesPerLevel)
            // The maps the batched exact path makes are checked against plain autograd, as on the exact path.
            (candidates.exactChecker, finals.exactChecker) = (single, singleLevel)
            (candidateExplainer, finalExplainer) = (candidates, finals)
        }
    }

    /// Whether the forward pass must keep FCOS's tower layers (the approximate path reads them).
    /// What the forward pass must keep for these maps (the reversed head reads FCOS's tower layers).
    public var traceExtras: ForwardTrace.Extra { effectivePath == .exact ? [] : .towerLayers }

    /// The grid Odam-NMS compares maps on: input/16 for one-stage detectors (the official FCOS `H_in // 16`), input/8
    /// for Faster R-CNN (the official code uses its stride-8 level at test time).
    public var candidateGridStride: Int { detector is FasterRCNN ? 8 : 16 }

    /// Class-logit maps of `predictions` (indices into `result.candidates`) for Odam-NMS, and the agreement per level.
    public func candidateMaps(trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int])
        -> (maps: CandidateMaps, agreement: [VerifiedExplainer.LevelAgreement])
    {
        let (maps, agreement) = candidateMaps(trace: trace, result: result, image: image, predictions: predictions, variants: [.standard])
        return (maps[0], agreement)
    }

    /// Candidate maps of `predictions` in each of `variants` (each target explained once, each grid resized from the
    /// same maps), and the agreement per level.
    public func candidateMaps(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], variants: [CandidateVariant]
    ) -> (maps: [CandidateMaps], agreement: [VerifiedExplainer.LevelAgreement]) {
        var targets: [ExplanationTarget] = []
        for variant in variants where !targets.contains(variant.target) { targets.append(variant.target) }
        let (maps, agreement) = candidateExplainer.explain(
            trace: trace, result: result, image: image, predictions: predictions, targets: targets)
        let made = variants.map { variant in
            let grid = (variant.grid ?? .stride(candidateGridStride)).size(inputSize: result.inputSize)
            return CandidateMaps(heatMaps: maps.map { $0[variant.target]! }, grid: grid)
        }
        return (made, agreement)
    }

    /// Maps of `predictions` for each target on the prediction's level, and the agreement per level.
    public func maps(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> (maps: [[ExplanationTarget: HeatMap]], agreement: [VerifiedExplainer.LevelAgreement]) {
        finalExplainer.explain(trace: trace, result: result, image: image, predictions: predictions, targets: targets)
    }
}
