public import Detection
import Engine
import NN
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// The fast path: ODAM gradients of FCOS predictions by backpropagating each seed only through the 11x11
/// receptive field of the head (four 3x3 tower convolutions and the 3x3 output convolution), with all windows
/// of a level batched into one convolution per layer.
///
/// The ReLU masks and convolutions are exact. GroupNorm is treated as its per-channel scale γ_c/σ_g with the
/// statistics frozen: its mean and variance terms, which spread a little gradient over the whole map, are dropped
/// (the official code keeps only γ).
public struct FCOSReversedHead {
    public let detector: FCOS
    /// An ODAM variant: the gradient transform applies exactly; Gaussian smoothing is applied within the window.
    public var method: HeatMapMethod
    package static let radius = 5
    package static let side = 11

    public init(detector: FCOS, method: HeatMapMethod = .odam()) {
        precondition(
            { if case .odam = method { return true } else { return false } }(),
            "the fast path makes ODAM maps; Grad-CAM needs the exact path")
        self.detector = detector
        self.method = method
    }

    /// One tower's forward state on one level: each layer's output (its positive entries pass the ReLU), the
    /// GroupNorm scales per layer, and the flipped, transposed weights.
    struct TowerState {
        var outputs: [Tensor]  // [C, H, W] per layer
        var scales: [[Float]]  // γ_c / σ_g per layer
        var transposed: [Tensor]  // flipped, transposed 3x3 weights per layer
        var gammas: [[Float]] = []  // GroupNorm's γ_c and β_c per layer, and its groups
        var betas: [[Float]] = []
        var groups: Int = 32
    }

    static func flippedTransposed(_ weight: Tensor) -> Tensor {
        let outC = weight.shape[0], inC = weight.shape[1]
        let w = weight.scalars
        return Tensor(shape: [inC, outC, 3, 3]) { index in
            let i = index / (outC * 9), o = (index / 9) % outC, k = index % 9
            return w[(o * inC + i) * 9 + (8 - k)]
        }
    }

    /// The state the forward pass kept (``ForwardTrace/Extra/towerLayers``), for image `image`.
    func towerState(_ tower: ConvTower, layers: [TowerLayer], image: Int) -> TowerState {
        var state = TowerState(outputs: [], scales: [], transposed: [])
        for (index, (conv, layer)) in zip(tower.convs, layers).enumerated() {
            state.outputs.append(layer.output.selecting(index: image, alongAxis: 0))
            state.scales.append(layer.scale.selecting(index: image, alongAxis: 0).scalars)
            state.transposed.append(Self.transposedWeights(conv.weight.value))
            if index < tower.norms.count {
                state.gammas.append(tower.norms[index].weight.value.scalars)
                state.betas.append(tower.norms[index].bias.value.scalars)
                state.groups = tower.norms[index].groups
            }
        }
        return state
    }

    /// Transposed weights, cached by weight storage (they are reused for every level and image).
    static func transposedWeights(_ weight: Tensor) -> Tensor {
        DerivedTensorCache.shared.value(for: weight.storage, kind: "flipped-transposed") { flippedTransposed(weight) }
    }

    /// The state recomputed from the level (when the forward pass did not keep it).
    func towerState(_ tower: ConvTower, level feature: Tensor) -> TowerState {
        var layers: [TowerLayer] = []
        _ = withoutGradients { tower(feature, recording: &layers) }
        return towerState(tower, layers: layers, image: 0)
    }

    /// [N, C, 11, 11] windows of a [C, H, W] map centred on `cells` (row, column), zero outside the map.
    static func windows(_ map: Tensor, cells: [(Int, Int)]) -> Tensor {
        let channels = map.shape[0], height = map.shape[1], width = map.shape[2]
        let out = Tensor(zeros: [cells.count, channels, side, side])
        let pm = map.storage.base, po = out.storage.base
        parallelFor(cells.count, costPerItem: channels * side * side) { range in
            for n in range {
                let (row, column) = cells[n]
                let x0 = max(0, column - radius), x1 = min(width, column + radius + 1)
                guard x0 < x1 else { continue }
                for c in 0..<channels {
                    for dy in 0..<side {
                        let y = row + dy - radius
                        guard y >= 0 && y < height else { continue }
                        let target = po + ((n * channels + c) * side + dy) * side + (x0 - column + radius)
                        target.update(from: pm + (c * height + y) * width + x0, count: x1 - x0)
                    }
                }
            }
        }
        return out
    }

    /// Multiplies gradient windows [N, C, s, s] centred on `cells` by a layer's ReLU mask (its output > 0, zero
    /// outside the map) and GroupNorm scale, in place.
    static func maskAndScale(_ gradient: Tensor, output: Tensor, scale: [Float], cells: [(Int, Int)]) {
        let channels = output.shape[0], height = output.shape[1], width = output.shape[2]
        let s = gradient.shape[2], r = s / 2
        let pg = gradient.storage.base, po = output.storage.base
        parallelFor(cells.count, costPerItem: channels * s * s) { range in
            for n in range {
                let (row, column) = cells[n]
                for c in 0..<channels {
                    let window = pg + (n * channels + c) * s * s
                    let plane = po + c * height * width
                    let factor = scale[c]
                    for dy in 0..<s {
                        let y = row + dy - r
                        let line = window + dy * s
                        guard y >= 0 && y < height else {
                            line.update(repeating: 0, count: s)
                            continue
                        }
                        for dx in 0..<s {
                            let x = column + dx - r
                            line[dx] = x >= 0 && x < width && plane[y * width + x] > 0 ? line[dx] * factor : 0
                        }
                    }
                }
            }
        }
    }

    /// Backpropagates gradient windows with respect to the tower's output ([N, C, 3, 3], the output convolution's
    /// reach) to the tower's input: each 3x3 convolution widens the window by one cell on each side, to 11x11.
    ///
    /// With `dropped`, its entry n adds up, over the layers, window n's ``droppedRatios(_:state:layer:cells:)``: the
    /// size of what freezing GroupNorm's statistics leaves out, relative to what it keeps.
    func backward(_ gradient: Tensor, through state: TowerState, cells: [(Int, Int)], dropped: inout [Float]?) -> Tensor {
        var g = gradient
        for layer in stride(from: state.outputs.count - 1, through: 0, by: -1) {
            if dropped != nil && layer < state.gammas.count {
                for (n, ratio) in Self.droppedRatios(g, state: state, layer: layer, cells: cells).enumerated() { dropped![n] += ratio }
            }
            Self.maskAndScale(g, output: state.outputs[layer], scale: state.scales[layer], cells: cells)
            g = withoutGradients { Tensor.conv2d(g, weight: state.transposed[layer], padding: (2, 2)) }
        }
        return g
    }

    /// The gradient windows [N, C, 3, 3] with respect to the output of a tower for seeds on a 3x3 output
    /// convolution: `weights[n]` multiplies output channel `channel[n]` of `conv` at the centre.
    static func seedWindows(_ conv: Conv2d, channels: [Int], weights: [Float], inChannels: Int) -> Tensor {
        let w = conv.weight.value.scalars
        let out = Tensor(zeros: [channels.count, inChannels, 3, 3])
        let po = out.storage.base
        for (n, (k, weight)) in zip(channels, weights).enumerated() where weight != 0 {
            for c in 0..<inChannels {
                for j in 0..<9 {
                    // d out[k, y, x] / d in[c, y + ky - 1, x + kx - 1] = W[k, c, ky, kx].
                    po[(n * inChannels + c) * 9 + j] = weight * w[(k * inChannels + c) * 9 + j]
                }
            }
        }
        return out
    }

    /// One prediction's map for one target on the 11x11 window of its level centred on its cell (row, column).
    package struct Window {
        package var member: Int
        package var target: ExplanationTarget
        package var level: Int
        package var row: Int
        package var column: Int
        /// The level's (padded) grid and its stride in input pixels.
        package var levelSize: ImageSize
        package var stride: (Float, Float)
        /// [11, 11].
        package var values: Tensor
        /// The target's gradient on the window, [C, 11, 11]; valid only during the call that hands the window over.
        package var gradient: UnsafePointer<Float>
        package var channels: Int
        /// What the frozen statistics leave out of this gradient, relative to what they keep, summed over the tower's
        /// layers (the larger of the two towers for the score target): 0 where the approximation is exact.
        package var droppedRatio: Float

        package init(
            member: Int, target: ExplanationTarget, level: Int, row: Int, column: Int, levelSize: ImageSize,
            stride: (Float, Float), values: Tensor, gradient: UnsafePointer<Float>, channels: Int, droppedRatio: Float = 0
        ) {
            (self.member, self.target, self.level, self.row, self.column) = (member, target, level, row, column)
            (self.levelSize, self.stride, self.values, self.gradient, self.channels) = (levelSize, stride, values, gradient, channels)
            self.droppedRatio = droppedRatio
        }
    }

    /// Pairs of a level handled at once: bounds the gradient windows held (256 · 256 channels · 121 floats).
    static let chunkSize = 256

    /// Computes the window map of every prediction and target, level by level, and hands each to `body`; with
    /// `estimatingError`, each window also carries its ``Window/droppedRatio`` (else 0).
    package func forEachWindow(
        trace: ForwardTrace, result: ImageDetections, image: Int, predictions: [Int], targets: [ExplanationTarget],
        estimatingError: Bool = false, _ body: (Window) -> Void
    ) {
        let byLevel = Dictionary(grouping: predictions.indices) { result.candidates[predictions[$0]].level }
        let padded = (trace.input.shape[2], trace.input.shape[3])
        let logitsByLevel = trace.head["cls_logits"]!, boxesByLevel = trace.head["bbox_regression"]!,
            ctrByLevel = trace.head["bbox_ctrness"]!
        for (level, members) in byLevel.sorted(by: { $0.key < $1.key }) {
            let feature = trace.pyramid[level].selecting(index: image, alongAxis: 0)
            let channels = feature.shape[0], height = feature.shape[1], width = feature.shape[2]
            let batchFeature = feature.reshaped([1, channels, height, width])
            let kept = level < trace.towerLayers.count ? trace.towerLayers[level] : nil
            let needsClass = targets.contains { $0 == .logit || $0 == .score }
            let needsBox = targets.contains { $0 != .logit }
            let classState =
                needsClass
                ? (kept.map { towerState(detector.classificationTower, layers: $0.classification, image: image) }
                    ?? towerState(detector.classificationTower, level: batchFeature)) : nil
            let boxState =
                needsBox
                ? (kept.map { towerState(detector.regressionTower, layers: $0.regression, image: image) }
                    ?? towerState(detector.regressionTower, level: batchFeature)) : nil
            let logits = logitsByLevel[level].storage.base, boxes = boxesByLevel[level].storage.base, ctr = ctrByLevel[level].storage.base
            let plane = height * width
            let stride = (Float(padded.0) / Float(height), Float(padded.1) / Float(width))
            let allPairs = members.flatMap { member in targets.map { (member, $0) } }
            for chunkStart in Swift.stride(from: 0, to: allPairs.count, by: Self.chunkSize) {
                let pairs = allPairs[chunkStart..<min(chunkStart + Self.chunkSize, allPairs.count)]
                let cells = pairs.map { (result.candidates[predictions[$0.0]].row, result.candidates[predictions[$0.0]].column) }
                // Seeds per pair on the class logits conv and on the box/centerness convs.
                var classChannels: [Int] = [], classWeights: [Float] = []
                var boxChannels: [Int] = [], boxWeights: [Float] = [], ctrWeights: [Float] = []
                for (member, target) in pairs {
                    let candidate = result.candidates[predictions[member]]
                    let cell = candidate.row * width + candidate.column
                    let imageOffset = image * plane
                    let logit = logits[(image * detector.classCount + candidate.label) * plane + cell]
                    var classWeight: Float = 0, boxWeight: Float = 0, ctrWeight: Float = 0, edge = 0
                    switch target {
                    case .logit: classWeight = 1
                    case .score:
                        let pl = sigmoid(logit), pq = sigmoid(ctr[imageOffset + cell]), score = (pl * pq).squareRoot()
                        classWeight = score * (1 - pl) / 2
                        ctrWeight = score * (1 - pq) / 2
                    case .x1, .y1, .x2, .y2:
                        edge = [ExplanationTarget.x1, .y1, .x2, .y2].firstIndex(of: target)!
                        // The box output is ReLU(conv): no gradient where it is zero.
                        boxWeight = boxes[(image * 4 + edge) * plane + cell] > 0 ? 1 : 0
                    }
                    classChannels.append(candidate.label)
                    classWeights.append(classWeight)
                    boxChannels.append(edge)
                    boxWeights.append(boxWeight)
                    ctrWeights.append(ctrWeight)
                }
                var gradient = Tensor(zeros: [pairs.count, channels, Self.side, Self.side])
                var classDropped = estimatingError ? [Float](repeating: 0, count: pairs.count) : nil, boxDropped = classDropped
                if classWeights.contains(where: { $0 != 0 }) {
                    let seed = Self.seedWindows(detector.classLogits, channels: classChannels, weights: classWeights, inChannels: channels)
                    gradient = gradient + backward(seed, through: classState!, cells: cells, dropped: &classDropped)
                }
                if boxWeights.contains(where: { $0 != 0 }) || ctrWeights.contains(where: { $0 != 0 }) {
                    let boxSeed = Self.seedWindows(detector.boxRegression, channels: boxChannels, weights: boxWeights, inChannels: channels)
                    let ctrSeed = Self.seedWindows(
                        detector.centerness, channels: [Int](repeating: 0, count: pairs.count), weights: ctrWeights, inChannels: channels)
                    gradient = gradient + backward(boxSeed + ctrSeed, through: boxState!, cells: cells, dropped: &boxDropped)
                }
                let activations = Self.windows(feature, cells: cells)
                let area = Self.side * Self.side
                for (n, (member, target)) in pairs.enumerated() {
                    let candidate = result.candidates[predictions[member]]
                    let boxCells = ((candidate.box[2] - candidate.box[0]) / stride.1, (candidate.box[3] - candidate.box[1]) / stride.0)
                    let values = method.map(
                        gradient: gradient.storage.base + n * channels * area, activation: activations.storage.base + n * channels * area,
                        channels: channels, height: Self.side, width: Self.side, boxCells: boxCells)
                    body(
                        Window(
                            member: member, target: target, level: level, row: cells[n].0, column: cells[n].1,
                            levelSize: ImageSize(height: height, width: width),
                            stride: stride, values: values, gradient: gradient.storage.base + n * channels * area, channels: channels,
                            droppedRatio: max(classDropped?[n] ?? 0, boxDropped?[n] ?? 0)))
                }
            }
        }
    }

    /// Heat maps of `predictions` for each target, as ``FCOSExplainer/explain(trace:result:image:predictions:targets:)``.
    public func explain(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> [[ExplanationTarget: HeatMap]] {
        windowMaps(trace: trace, result: result, image: image, predictions: predictions, targets: targets, estimatingError: false).maps
    }

    /// The maps and, per map, the relative size of what the frozen statistics dropped (``Window/droppedRatio``).
    public func explainEstimatingError(
        trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], targets: [ExplanationTarget]
    ) -> (maps: [[ExplanationTarget: HeatMap]], errors: [[ExplanationTarget: Float]]) {
        windowMaps(trace: trace, result: result, image: image, predictions: predictions, targets: targets, estimatingError: true)
    }

    func windowMaps(
        trace: ForwardTrace, result: ImageDetections, image: Int, predictions: [Int], targets: [ExplanationTarget], estimatingError: Bool
    ) -> (maps: [[ExplanationTarget: HeatMap]], errors: [[ExplanationTarget: Float]]) {
        var maps = [[ExplanationTarget: HeatMap]](repeating: [:], count: predictions.count)
        var errors = [[ExplanationTarget: Float]](repeating: [:], count: predictions.count)
        forEachWindow(
            trace: trace, result: result, image: image, predictions: predictions, targets: targets, estimatingError: estimatingError
        ) {
            window in
            let (height, width) = (window.levelSize.height, window.levelSize.width)
            var grid = [Float](repeating: 0, count: height * width)
            for dy in 0..<Self.side {
                let y = window.row + dy - Self.radius
                guard y >= 0 && y < height else { continue }
                for dx in 0..<Self.side {
                    let x = window.column + dx - Self.radius
                    guard x >= 0 && x < width else { continue }
                    grid[y * width + x] = window.values.storage.base[dy * Self.side + dx]
                }
            }
            maps[window.member][window.target] = HeatMap(
                grid: Tensor(shape: [height, width], values: grid), stride: window.stride, inputSize: result.inputSize,
                originalSize: result.originalSize)
            errors[window.member][window.target] = window.droppedRatio
        }
        return (maps, errors)
    }
}
