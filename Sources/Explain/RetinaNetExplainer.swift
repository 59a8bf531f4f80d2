public import Detection
import Engine
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// ODAM heat maps for RetinaNet predictions by automatic differentiation through the head (the exact path).
///
/// Targets: the score σ(logit), the class logit, and the edges of the decoded box (−x1, −y1, x2, y2, positive
/// outward; zero where the box is clipped to the image) or, with ``EdgeTargets/rawDeltas``, the raw regression
/// outputs (dx, dy, dw, dh) of the official code. Each prediction is explained on the FPN level that made it.
public struct RetinaNetExplainer {
    public let detector: RetinaNet
    public var seedsPerPass: Int
    public var method: HeatMapMethod
    public var edges: EdgeTargets
    /// The feature map explained: the prediction's FPN level (default) or a backbone stage.
    public var feature: FeatureSource

    public init(
        detector: RetinaNet, seedsPerPass: Int = 8, method: HeatMapMethod = .odam(), edges: EdgeTargets = .decodedBox,
        feature: FeatureSource = .predictionLevel
    ) {
        self.detector = detector
        self.seedsPerPass = seedsPerPass
        self.method = method
        self.edges = edges
        self.feature = feature
    }

    /// Heat maps of `predictions` (indices into `result.candidates`) for each target.
    public func explain(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> [[ExplanationTarget: HeatMap]] {
        var maps = [[ExplanationTarget: HeatMap]](repeating: [:], count: predictions.count)
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        let padded = (trace.input.shape[2], trace.input.shape[3])
        let classes = detector.classCount
        for (level, members) in byLevel.sorted(by: { $0.key < $1.key }) {
            let (leaf, levelMap) = feature.recorded(trace: trace, image: image, level: level, pyramid: detector.backbone.fpn)
            let (logits, deltas) = detector.head(levelMap)
            let stride = (Float(padded.0) / Float(leaf.shape[2]), Float(padded.1) / Float(leaf.shape[3]))
            let anchors = detector.anchors.anchors(
                level: level, gridHeight: logits.shape[2], gridWidth: logits.shape[3], imageHeight: padded.0, imageWidth: padded.1)
            let levelMaps = SeededBackward(seedsPerPass: seedsPerPass, method: method).anchoredHeadMaps(
                leaf: leaf, logits: logits, codes: deltas, classes: classes, members: members,
                candidates: { result.candidates[predictions[$0]] }, targets: targets, stride: stride, result: result
            ) { target, codes, anchorIndex in
                edges.derivatives(
                    target, deltas: codes, reference: Array(anchors[(4 * anchorIndex)..<(4 * anchorIndex + 4)]), coder: detector.coder,
                    inputSize: result.inputSize)
            }
            for (member, target, map) in levelMaps { maps[member][target] = map }
        }
        return maps
    }
}

/// What the box-edge targets of anchor-based detectors differentiate.
public enum EdgeTargets: String, Sendable, CaseIterable {
    /// The decoded box's edges, positive outward: −x1, −y1, x2, y2.
    case decodedBox
    /// The raw regression outputs dx, dy, dw, dh (for x1, y1, x2, y2), as the official code.
    case rawDeltas

    func derivatives(
        _ target: ExplanationTarget, deltas: [Float], reference: [Float], coder: BoxCoder, inputSize: ImageSize
    ) -> [Float] {
        switch self {
        case .decodedBox:
            return SeededBackward.edgeDerivatives(target, deltas: deltas, reference: reference, coder: coder, inputSize: inputSize)
        case .rawDeltas:
            guard let edge = [ExplanationTarget.x1, .y1, .x2, .y2].firstIndex(of: target) else { return [0, 0, 0, 0] }
            return (0..<4).map { $0 == edge ? 1 : 0 }
        }
    }
}
