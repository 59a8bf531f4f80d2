public import Detection
import Engine
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// Exact ODAM for SSDLite: seeds on the prediction's class logit, its score (σ'), or a decoded box edge (outward:
/// −x1, −y1, x2, y2 in input pixels), sent back by autograd, batched as ``SeededBackward`` does, to the feature map
/// the prediction's predictor reads (`.predictionLevel`: one of the six, down to 1x1, where a map has one cell) or to
/// the first, 19x19 map that every later one derives from (`.backbone(_:)`, any stage: the later maps are recomputed
/// from it), which is what the runner stores.
public struct SSDLiteExplainer {
    public let detector: SSDLite
    public var seedsPerPass: Int
    public var method: HeatMapMethod
    public var feature: FeatureSource

    public init(detector: SSDLite, seedsPerPass: Int = 8, method: HeatMapMethod = .odam(), feature: FeatureSource = .backbone(stage: 0)) {
        self.detector = detector
        self.seedsPerPass = seedsPerPass
        self.method = method
        self.feature = feature
    }

    public func explain(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> [[ExplanationTarget: HeatMap]] {
        var maps = [[ExplanationTarget: HeatMap]](repeating: [:], count: predictions.count)
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        let input = (trace.input.shape[2], trace.input.shape[3])
        let classes = detector.classCount
        func recordedLeaf(_ map: Tensor) -> Tensor {
            map.selecting(index: image, alongAxis: 0).reshaped([1] + Array(map.shape.dropFirst())).detached().requiringGradient()
        }
        // On the first map, the later maps are recomputed from one leaf once, up to the coarsest level explained.
        let firstLeaf = feature == .predictionLevel ? nil : recordedLeaf(trace.pyramid[0])
        let fromFirst = firstLeaf.map { detector.featureMaps(through: byLevel.keys.max() ?? 0, fromFirst: $0) } ?? []
        for (level, members) in byLevel.sorted(by: { $0.key < $1.key }) {
            let leaf = firstLeaf ?? recordedLeaf(trace.pyramid[level])
            let levelMap = firstLeaf == nil ? leaf : fromFirst[level]
            let (logits, codes) = detector.head(level, levelMap)
            let stride = (Float(input.0) / Float(leaf.shape[2]), Float(input.1) / Float(leaf.shape[3]))
            let anchors = detector.anchors.anchors(layer: level, gridHeight: logits.shape[2], gridWidth: logits.shape[3])
            let levelMaps = SeededBackward(seedsPerPass: seedsPerPass, method: method).anchoredHeadMaps(
                leaf: leaf, logits: logits, codes: codes, classes: classes, members: members,
                candidates: { result.candidates[predictions[$0]] }, targets: targets, stride: stride, result: result
            ) { target, codes, anchorIndex in
                Self.edgeDerivatives(
                    target, codes: codes, anchor: Array(anchors[(4 * anchorIndex)..<(4 * anchorIndex + 4)]), scales: detector.coderScales,
                    inputSize: result.inputSize)
            }
            for (member, target, map) in levelMaps { maps[member][target] = map }
        }
        return maps
    }

    /// The derivatives of the decoded edge `target` (outward: −x1, −y1, x2, y2, in input pixels) with respect to the
    /// codes (ty, tx, th, tw) of TensorFlow's `FasterRcnnBoxCoder` for an anchor (y, x, h, w) in normalized
    /// coordinates; zero where the edge lies outside the image (the detection's box is clipped there).
    static func edgeDerivatives(_ target: ExplanationTarget, codes: [Float], anchor: [Float], scales: [Float], inputSize: ImageSize)
        -> [Float]
    {
        guard let edge = [ExplanationTarget.x1, .y1, .x2, .y2].firstIndex(of: target) else { return [0, 0, 0, 0] }
        let horizontal = edge % 2 == 0
        // Codes and anchor components of this axis: x uses (tx, tw) and (x, w); y uses (ty, th) and (y, h).
        let (center, size) = horizontal ? (1, 3) : (0, 2)
        let pixels = Float(horizontal ? inputSize.width : inputSize.height)
        let extent = expf(codes[size] / scales[size]) * anchor[size]
        let middle = codes[center] / scales[center] * anchor[size] + anchor[center]
        let value = (middle + (edge < 2 ? -0.5 : 0.5) * extent) * pixels
        guard value > 0 && value < pixels else { return [0, 0, 0, 0] }
        // x1 = (xc − ½w)·W with xc = tx/10·wa + xa and w = e^(tw/5)·wa: outward (−x1) is −wa/10·W ∂tx + ½w/5·W ∂tw.
        var derivatives: [Float] = [0, 0, 0, 0]
        derivatives[center] = (edge < 2 ? -1 : 1) * anchor[size] / scales[center] * pixels
        derivatives[size] = 0.5 * extent / scales[size] * pixels
        return derivatives
    }
}
