public import Detection
import Engine

/// ODAM heat maps for Faster R-CNN predictions by automatic differentiation through the box head (the exact
/// path): all RoIs of one FPN level go through RoIAlign and the box head once with gradient recording, and their
/// seeds go back together, `seedsPerPass` at a time.
///
/// Targets: the softmax probability of the predicted class, its logit, and the edges of the decoded box (−x1, −y1,
/// x2, y2; zero where clipped) or, with ``EdgeTargets/rawDeltas``, the raw class-specific deltas. The feature map is
/// the FPN level the RoI was pooled from; as in the official code the gradient reaches it only through RoIAlign's
/// sampling points in the proposal.
public struct FasterRCNNExplainer {
    public let detector: FasterRCNN
    public var seedsPerPass: Int
    public var method: HeatMapMethod
    public var edges: EdgeTargets
    /// The feature map explained: the RoI's FPN level (default), a backbone stage, or the RoI-aligned features
    /// projected back into the proposal.
    public var feature: FeatureSource

    public init(
        detector: FasterRCNN, seedsPerPass: Int = 16, method: HeatMapMethod = .odam(), edges: EdgeTargets = .decodedBox,
        feature: FeatureSource = .predictionLevel
    ) {
        self.detector = detector
        self.seedsPerPass = seedsPerPass
        self.method = method
        self.edges = edges
        self.feature = feature
    }

    /// Heat maps of `predictions` (indices into `result.candidates`; each names its RoI by `row`) for each target.
    public func explain(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> [[ExplanationTarget: HeatMap]] {
        var maps = [[ExplanationTarget: HeatMap]](repeating: [:], count: predictions.count)
        let proposals = trace.proposals!.scalars
        let padded = (trace.input.shape[2], trace.input.shape[3])
        let scales = detector.roiScales(trace.pyramid, imageSizes: [result.inputSize])
        let classes = detector.classCount
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        for (level, members) in byLevel.sorted(by: { $0.key < $1.key }) {
            var (leaf, levelMap) = feature.recorded(trace: trace, image: image, level: level, pyramid: detector.backbone.fpn)
            // The level's RoIs, each once, against this single image.
            var rois: [Int] = []
            var position: [Int: Int] = [:]
            for member in members {
                let roi = result.candidates[predictions[member]].row
                if position[roi] == nil {
                    position[roi] = rois.count
                    rois.append(roi)
                }
            }
            let boxes = Tensor(shape: [rois.count, 5], values: rois.flatMap { [0] + proposals[(5 * $0 + 1)..<(5 * $0 + 5)] })
            var pooled = Tensor.roiAlign(
                feature == .roiFeatures ? levelMap.detached() : levelMap, boxes: boxes,
                outputSize: (detector.poolSize, detector.poolSize), spatialScale: scales[level], samplingRatio: detector.samplingRatio)
            let levelGrid = (levelMap.shape[2], levelMap.shape[3])
            if feature == .roiFeatures {
                pooled = pooled.requiringGradient()
                leaf = pooled
            }
            let (logits, deltas) = detector.boxHeadOutputs(pooled)
            let height = leaf.shape[2], width = leaf.shape[3]
            let stride = (Float(padded.0) / Float(height), Float(padded.1) / Float(width))
            let pairs = SeededBackward.pairs(
                members: members, targets: targets, boxes: { result.candidates[predictions[$0]].box }, stride: stride)
            let writeSeed = { (p: Int, seeds: [UnsafeMutablePointer<Float>]) in
                let candidate = result.candidates[predictions[pairs[p].member]]
                let row = position[candidate.row]!, label = candidate.label
                switch pairs[p].target {
                case .logit: seeds[0][row * classes + label] = 1
                case .score:
                    // d softmax_k / d z_j = p_k (δ_kj − p_j).
                    let probabilities = softmax((0..<classes).map { logits.storage.base[row * classes + $0] })
                    for j in 0..<classes { seeds[0][row * classes + j] = probabilities[label] * ((j == label ? 1 : 0) - probabilities[j]) }
                case .x1, .y1, .x2, .y2:
                    let base = (row * classes + label) * 4
                    let codes = (0..<4).map { deltas.storage.base[base + $0] }
                    let reference = Array(proposals[(5 * candidate.row + 1)..<(5 * candidate.row + 5)])
                    let derivatives = edges.derivatives(
                        pairs[p].target, deltas: codes, reference: reference, coder: detector.boxCoder, inputSize: result.inputSize)
                    for c in 0..<4 { seeds[1][base + c] = derivatives[c] }
                }
            }
            let backward = SeededBackward(seedsPerPass: seedsPerPass, method: method)
            let levelMaps =
                feature == .roiFeatures
                ? backward.projectedRoIMaps(
                    pooled: pooled, rows: pairs.map { position[result.candidates[predictions[$0.member]].row]! },
                    boxes: rois.map { Array(proposals[(5 * $0 + 1)..<(5 * $0 + 5)]) }, outputs: [logits, deltas], pairs: pairs,
                    levelGrid: levelGrid, scale: scales[level], padded: padded, result: result, writeSeed: writeSeed)
                : backward.maps(leaf: leaf, outputs: [logits, deltas], pairs: pairs, stride: stride, result: result, writeSeed: writeSeed)
            for (pair, map) in zip(pairs, levelMaps) { maps[pair.member][pair.target] = map }
        }
        return maps
    }
}
