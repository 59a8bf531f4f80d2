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
    /// Whether ``explain(trace:result:image:predictions:targets:)`` folds each tower's first convolution into the
    /// map where it can (``folds``); off, the gradient goes back to the level by plain autograd, as the checks that
    /// the runner's maps are compared with.
    public var folding = true

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
        let recorded = record(trace: trace, image: image, levels: levels, targets: targets, folding: folding)
        return explain(recorded, trace: trace, result: result, predictions: predictions, targets: targets)
    }

    /// The head on one FPN level with its graph recorded: what every prediction of that level backpropagates through.
    public struct RecordedLevel {
        let leaf: Tensor
        let logits: Tensor, boxes: Tensor, centerness: Tensor
        /// With folding (``folds``): each recorded tower's first convolution output, a node of the graph, with that
        /// convolution folded with the level; the maps take gradients there instead of at `leaf`.
        var classTower: FoldedTower? = nil, boxTower: FoldedTower? = nil
    }

    /// One value of a seed: `value` at `index` of output `output` (0 class logits, 1 box regression, 2 centerness).
    struct SeedEntry {
        var output: Int, index: Int, value: Float
    }

    /// The leaf a level's recording starts from and the level computed from it (the same tensor on the prediction's
    /// level).
    struct RecordedInput: Sendable {
        let leaf: Tensor, level: Tensor
    }

    /// One tower recorded on a level: its first convolution's output (a node of the graph) and the head's outputs
    /// on it (class logits; or box regression and centerness).
    struct RecordedTower: Sendable {
        let first: Tensor
        let outputs: [Tensor]
    }

    /// Runs the head with gradient recording on `levels` (paid once per image, like PyTorch's grad-enabled forward).
    /// On the prediction's level the recording is kept with the trace (``ForwardTrace/recordings``), so that every
    /// explainer of this detector on that image reuses it.
    ///
    /// - Parameter folding: take the maps' gradients at each tower's first convolution output and fold that
    ///   convolution into the map (``folds``); the gradients of ``logitGradients(_:result:predictions:_:)`` need it off.
    public func record(
        trace: ForwardTrace, image: Int = 0, levels: Set<Int>, targets: [ExplanationTarget], folding: Bool = false
    ) -> [Int: RecordedLevel] {
        // Record only the towers the targets reach: a logit target never needs the regression tower.
        let needsClass = targets.contains { $0 == .logit || $0 == .score }
        let needsBox = targets.contains { $0 != .logit }
        // Only the prediction's level is the same recording for every explainer of the trace.
        func shared<Value: Sendable>(_ key: String, _ make: () -> Value) -> Value {
            feature == .predictionLevel ? trace.recordings.value("fcos.\(key).\(image)", make: make) : make()
        }
        var recorded: [Int: RecordedLevel] = [:]
        for level in levels {
            let input = shared("level.\(level)") {
                let made = feature.recorded(trace: trace, image: image, level: level, pyramid: detector.backbone.fpn)
                return RecordedInput(leaf: made.leaf, level: made.level)
            }
            let (leaf, levelMap) = (input.leaf, input.level)
            func kept(_ name: String) -> Tensor {
                let t = trace.head[name]![level]
                return t.selecting(index: image, alongAxis: 0).reshaped([1] + Array(t.shape.dropFirst())).detached()
            }
            let classTower =
                needsClass
                ? shared("class.\(level)") { recordTower(detector.classificationTower, on: levelMap) { [detector.classLogits($0)] } } : nil
            let boxTower =
                needsBox
                ? shared("box.\(level)") {
                    recordTower(detector.regressionTower, on: levelMap) { [detector.boxRegression($0).relu(), detector.centerness($0)] }
                } : nil
            var state = RecordedLevel(
                leaf: leaf, logits: classTower?.outputs[0] ?? kept("cls_logits"), boxes: boxTower?.outputs[0] ?? kept("bbox_regression"),
                centerness: boxTower?.outputs[1] ?? kept("bbox_ctrness"))
            if folding && folds {
                state.classTower = classTower.map { tower in
                    FoldedTower(
                        first: tower.first,
                        fold: shared("class-fold.\(level)") { FoldedTower.fold(detector.classificationTower, level: levelMap) },
                        detector.classificationTower)
                }
                state.boxTower = boxTower.map { tower in
                    FoldedTower(
                        first: tower.first,
                        fold: shared("box-fold.\(level)") { FoldedTower.fold(detector.regressionTower, level: levelMap) },
                        detector.regressionTower)
                }
            }
            recorded[level] = state
        }
        return recorded
    }

    /// `tower` and the head outputs `head` makes of its features, recorded on `level`.
    private func recordTower(_ tower: ConvTower, on level: Tensor, head: (Tensor) -> [Tensor]) -> RecordedTower {
        let first = tower.convs[0](level)
        return RecordedTower(first: first, outputs: head(tower.afterFirstConvolution(first)))
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
            // Each pair's seed as (output, index, value) entries on [logits, boxes, centerness].
            let entries = pairs.map { pair -> [SeedEntry] in
                let candidate = result.candidates[predictions[pair.member]]
                let cell = candidate.row * width + candidate.column
                let logitIndex = candidate.label * plane + cell
                switch pair.target {
                case .logit: return [SeedEntry(output: 0, index: logitIndex, value: 1)]
                case .score:
                    // score = sqrt(σ(l)·σ(q)): d score/d l = score·(1 - σ(l))/2, likewise for q.
                    let pl = sigmoid(logits.storage.base[logitIndex]), pq = sigmoid(centerness.storage.base[cell])
                    let score = (pl * pq).squareRoot()
                    return [
                        SeedEntry(output: 0, index: logitIndex, value: score * (1 - pl) / 2),
                        SeedEntry(output: 2, index: cell, value: score * (1 - pq) / 2),
                    ]
                case .x1, .y1, .x2, .y2:
                    return [
                        SeedEntry(
                            output: 1, index: [ExplanationTarget.x1, .y1, .x2, .y2].firstIndex(of: pair.target)! * plane + cell, value: 1)
                    ]
                }
            }
            let levelMaps =
                state.classTower != nil || state.boxTower != nil
                ? foldedMaps(
                    state, pairs: pairs, entries: entries, stride: stride, trace: trace, result: result,
                    predictionKey: { p in
                        let candidate = result.candidates[predictions[pairs[p].member]]
                        return "\(level).\(candidate.row).\(candidate.column).\(candidate.label)"
                    })
                : SeededBackward(seedsPerPass: seedsPerPass, method: method).maps(
                    leaf: state.leaf, outputs: [logits, boxes, centerness], pairs: pairs, stride: stride, result: result
                ) { p, seeds in
                    for entry in entries[p] { seeds[entry.output][entry.index] = entry.value }
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
