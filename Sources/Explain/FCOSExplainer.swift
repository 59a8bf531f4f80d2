public import Detection
import Engine
import NN

#if canImport(Glibc)
    import Glibc
#endif

/// ODAM heat maps for FCOS predictions by automatic differentiation through the head (the exact path).
///
/// Each prediction's targets are differentiated with respect to the FPN level that made it. Predictions of one
/// level share one recorded forward pass of the head, and their seeds go through the backward pass together
/// (``vectorJacobianProducts(of:seeds:withRespectTo:)``), `seedsPerPass` at a time.
public struct FCOSExplainer {
    public let detector: FCOS
    public var seedsPerPass: Int
    /// ODAM (default), or the Grad-CAM / Grad-CAM++ baselines on the same gradients.
    public var method: HeatMapMethod
    /// The feature map explained: the prediction's FPN level (default) or a backbone stage.
    public var feature: FeatureSource

    public init(detector: FCOS, seedsPerPass: Int = 8, method: HeatMapMethod = .odam(), feature: FeatureSource = .predictionLevel) {
        self.detector = detector
        self.seedsPerPass = seedsPerPass
        self.method = method
        self.feature = feature
    }

    /// Heat maps of `predictions` (indices into `result.candidates`) for each target, in the order given.
    public func explain(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> [[ExplanationTarget: HeatMap]] {
        let levels = Set(predictions.map { result.candidates[$0].level })
        let recorded = record(trace: trace, image: image, levels: levels, targets: targets)
        return explain(recorded, trace: trace, result: result, predictions: predictions, targets: targets)
    }

    /// The head on one FPN level with its graph recorded: what every prediction of that level backpropagates through.
    public struct RecordedLevel {
        let leaf: Tensor
        let logits: Tensor, boxes: Tensor, centerness: Tensor
    }

    /// Runs the head with gradient recording on `levels` (paid once per image, like PyTorch's grad-enabled forward).
    public func record(trace: ForwardTrace, image: Int = 0, levels: Set<Int>, targets: [ExplanationTarget]) -> [Int: RecordedLevel] {
        // Record only the towers the targets reach: a logit target never needs the regression tower.
        let needsClass = targets.contains { $0 == .logit || $0 == .score }
        let needsBox = targets.contains { $0 != .logit }
        var recorded: [Int: RecordedLevel] = [:]
        for level in levels {
            let (leaf, levelMap) = feature.recorded(trace: trace, image: image, level: level, pyramid: detector.backbone.fpn)
            func kept(_ name: String) -> Tensor {
                let t = trace.head[name]![level]
                return t.selecting(index: image, alongAxis: 0).reshaped([1] + Array(t.shape.dropFirst())).detached()
            }
            let logits = needsClass ? detector.classLogits(detector.classificationTower(levelMap)) : kept("cls_logits")
            let boxFeatures = needsBox ? detector.regressionTower(levelMap) : nil
            recorded[level] = RecordedLevel(
                leaf: leaf, logits: logits, boxes: boxFeatures.map { detector.boxRegression($0).relu() } ?? kept("bbox_regression"),
                centerness: boxFeatures.map { detector.centerness($0) } ?? kept("bbox_ctrness"))
        }
        return recorded
    }

    /// Heat maps from recorded levels (see ``record(trace:image:levels:targets:)``): the per-prediction cost.
    public func explain(
        _ recorded: [Int: RecordedLevel], trace: ForwardTrace, result: ImageDetections, predictions: [Int], targets: [ExplanationTarget]
    ) -> [[ExplanationTarget: HeatMap]] {
        var maps = [[ExplanationTarget: HeatMap]](repeating: [:], count: predictions.count)
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        let padded = (trace.input.shape[2], trace.input.shape[3])
        for (level, members) in byLevel.sorted(by: { $0.key < $1.key }) {
            let state = recorded[level]!
            let (logits, boxes, centerness) = (state.logits, state.boxes, state.centerness)
            let height = logits.shape[2], width = logits.shape[3], plane = height * width
            let stride = (Float(padded.0) / Float(state.leaf.shape[2]), Float(padded.1) / Float(state.leaf.shape[3]))
            // Every (prediction, target) pair is one seed.
            let pairs = SeededBackward.pairs(
                members: members, targets: targets, boxes: { result.candidates[predictions[$0]].box }, stride: stride)
            let levelMaps = SeededBackward(seedsPerPass: seedsPerPass, method: method).maps(
                leaf: state.leaf, outputs: [logits, boxes, centerness], pairs: pairs, stride: stride, result: result
            ) { p, seeds in
                let candidate = result.candidates[predictions[pairs[p].member]]
                let cell = candidate.row * width + candidate.column
                let logitIndex = candidate.label * plane + cell
                switch pairs[p].target {
                case .logit: seeds[0][logitIndex] = 1
                case .score:
                    // score = sqrt(σ(l)·σ(q)): d score/d l = score·(1 - σ(l))/2, likewise for q.
                    let pl = sigmoid(logits.storage.base[logitIndex]), pq = sigmoid(centerness.storage.base[cell])
                    let score = (pl * pq).squareRoot()
                    seeds[0][logitIndex] = score * (1 - pl) / 2
                    seeds[2][cell] = score * (1 - pq) / 2
                case .x1, .y1, .x2, .y2:
                    seeds[1][[ExplanationTarget.x1, .y1, .x2, .y2].firstIndex(of: pairs[p].target)! * plane + cell] = 1
                }
            }
            for (pair, map) in zip(pairs, levelMaps) { maps[pair.member][pair.target] = map }
        }
        return maps
    }

    /// The exact gradient of each prediction's class logit with respect to its level (one image, [C, H, W] values),
    /// handed to `body` with the prediction's position in `predictions`; valid only during the call. Odam-Train's
    /// exact maps are built from these.
    public func logitGradients(
        _ recorded: [Int: RecordedLevel], result: ImageDetections, predictions: [Int],
        _ body: (_ member: Int, _ gradient: UnsafePointer<Float>) -> Void
    ) {
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        for (level, members) in byLevel.sorted(by: { $0.key < $1.key }) {
            let state = recorded[level]!
            let plane = state.logits.shape[2] * state.logits.shape[3], width = state.logits.shape[3]
            SeededBackward(seedsPerPass: seedsPerPass, method: method).gradients(
                leaf: state.leaf, outputs: [state.logits], count: members.count,
                writeSeed: { p, seeds in
                    let candidate = result.candidates[predictions[members[p]]]
                    seeds[0][candidate.label * plane + candidate.row * width + candidate.column] = 1
                }, { p, gradient in body(members[p], gradient) })
        }
    }
}
