import Detection
import Engine
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// The backward half that every exact-path explainer shares: seeds on a head's recorded outputs, backpropagated to
/// one feature map `seedsPerPass` at a time (``vectorJacobianProducts(of:seeds:withRespectTo:)``), each gradient
/// made a heat map.
struct SeededBackward {
    var seedsPerPass: Int
    var method: HeatMapMethod

    /// One (prediction, target) pair to explain; `boxCells` is the predicted box's size in cells of the feature map
    /// (width, height), for the Gaussian Φ.
    struct Pair {
        var member: Int
        var target: ExplanationTarget
        var boxCells: (Float, Float)
    }

    /// Every (prediction, target) pair of `members`, each prediction's box (input pixels) measured in cells of
    /// `stride`.
    static func pairs(members: [Int], targets: [ExplanationTarget], boxes: (Int) -> Box<Float>, stride: (Float, Float)) -> [Pair] {
        members.flatMap { member in
            let box = boxes(member)
            return targets.map { Pair(member: member, target: $0, boxCells: ((box[2] - box[0]) / stride.1, (box[3] - box[1]) / stride.0)) }
        }
    }

    /// The memory one pass's seeds may hold together, where a level is large (FCOS-R50's P3 at 800x1216 is 15.6 MB a
    /// tensor): at most as many seeds go back together as fit, at least one.
    static let passBytes = 256 << 20

    /// The seeds that go back together when each holds `bytesPerSeed`: `seedsPerPass`, fewer where they would not fit
    /// in ``passBytes``.
    func seedsPerPass(bytesPerSeed: Int) -> Int { max(1, min(seedsPerPass, Self.passBytes / max(bytesPerSeed, 1))) }

    /// Backpropagates the seeds of `count` pairs through `outputs` to `leaf`, `perPass` at a time, and hands each
    /// pair's gradient (`leaf.count` values) to `body`. By default a convolutional head's: a seed's backward holds
    /// about 16 leaf-sized buffers at its peak (the 3x3 input-gradient convolution's column buffer alone is 9).
    ///
    /// - Parameters:
    ///   - group: pairs of one group go back together, never with another group's; nil puts all in one. A pass
    ///     goes through every branch that one of its seeds reaches, for all its seeds, so pairs that reach different
    ///     branches (FCOS's classification and regression towers) are kept apart.
    ///   - writeSeed: fills the seed of pair `p`: one buffer per output, of that output's size, zeroed.
    func gradients(
        leaf: Tensor, outputs: [Tensor], count: Int, perPass: Int? = nil, group: ((Int) -> Int)? = nil,
        writeSeed: (_ pair: Int, _ seeds: [UnsafeMutablePointer<Float>]) -> Void,
        _ body: (_ pair: Int, _ gradient: UnsafePointer<Float>) -> Void
    ) {
        gradients(leaves: [leaf], outputs: outputs, count: count, perPass: perPass, group: group, writeSeed: writeSeed) { body($0, $1[0]) }
    }

    /// ``gradients(leaf:outputs:count:perPass:group:writeSeed:_:)`` with respect to several leaves at once: `body`
    /// gets one gradient per leaf (zeros for a leaf the pair's seed does not reach).
    func gradients(
        leaves: [Tensor], outputs: [Tensor], count: Int, perPass: Int? = nil, group: ((Int) -> Int)? = nil,
        writeSeed: (_ pair: Int, _ seeds: [UnsafeMutablePointer<Float>]) -> Void,
        _ body: (_ pair: Int, _ gradients: [UnsafePointer<Float>]) -> Void
    ) {
        let leafCount = leaves.reduce(0) { $0 + $1.count }
        let perPass = perPass ?? seedsPerPass(bytesPerSeed: 16 * leafCount * MemoryLayout<Float>.size)
        let groups =
            group.map { key in Dictionary(grouping: 0..<count, by: key).sorted { $0.key < $1.key }.map(\.value) } ?? [Array(0..<count)]
        let chunks = groups.flatMap { members in
            Swift.stride(from: 0, to: members.count, by: perPass).map { Array(members[$0..<min($0 + perPass, members.count)]) }
        }
        for chunk in chunks {
            let seeds = outputs.map { Tensor(zeros: [chunk.count] + $0.shape) }
            for (s, p) in chunk.enumerated() {
                writeSeed(p, zip(seeds, outputs).map { $0.storage.base + s * $1.count })
            }
            // Only outputs with a nonzero seed are roots, so that a target never enters a branch it does not reach.
            var roots: [Tensor] = [], used: [Tensor] = []
            for (output, seed) in zip(outputs, seeds) where seed.withUnsafeBufferPointer({ $0.contains { $0 != 0 } }) {
                roots.append(output)
                used.append(seed)
            }
            let gradients =
                roots.isEmpty
                ? leaves.map { Tensor(zeros: [chunk.count] + $0.shape) }
                : vectorJacobianProducts(of: roots, seeds: used, withRespectTo: leaves)
            for (s, p) in chunk.enumerated() {
                body(p, zip(gradients, leaves).map { UnsafePointer($0.storage.base + s * $1.count) })
            }
        }
    }

    /// Heat maps of `pairs` with respect to `leaf` ([1, C, H, W], recorded) through `outputs`.
    func maps(
        leaf: Tensor, outputs: [Tensor], pairs: [Pair], stride: (Float, Float), result: ImageDetections,
        writeSeed: (_ pair: Int, _ seeds: [UnsafeMutablePointer<Float>]) -> Void
    ) -> [HeatMap] {
        let single = leaf.detached()
        let channels = single.shape[1], height = single.shape[2], width = single.shape[3]
        var maps = [HeatMap?](repeating: nil, count: pairs.count)
        gradients(leaf: leaf, outputs: outputs, count: pairs.count, group: { pairs[$0].target.branch }, writeSeed: writeSeed) {
            p, gradient in
            let raw = method.map(
                gradient: gradient, activation: single.storage.base, channels: channels, height: height, width: width,
                boxCells: pairs[p].boxCells)
            maps[p] = HeatMap(grid: raw, stride: stride, inputSize: result.inputSize, originalSize: result.originalSize)
        }
        return maps.map { $0! }
    }

    /// Two-stage maps on RoI features: each pair's map ReLU(Σ_c Φ(g_c) · A_c) on its RoI's pooled features
    /// ([K, C, P, P], recorded), projected back onto the level grid inside the proposal as the official
    /// `roi_align_inv`: cell p of the level in [⌊x1/s⌋, ⌈x2/s⌉] reads the P×P map bilinearly at
    /// u = (p − x1/s) / (w/s) · (P − 1), corner-aligned, and is 0 where u leaves [0, P − 1].
    func projectedRoIMaps(
        pooled: Tensor, rows: [Int], boxes: [[Float]], outputs: [Tensor], pairs: [Pair], levelGrid: (Int, Int), scale: Float,
        padded: (Int, Int), result: ImageDetections, writeSeed: (_ pair: Int, _ seeds: [UnsafeMutablePointer<Float>]) -> Void
    ) -> [HeatMap] {
        let activations = pooled.detached()
        let channels = pooled.shape[1], side = pooled.shape[2], perRoI = channels * side * side
        let (height, width) = levelGrid
        let stride = (Float(padded.0) / Float(height), Float(padded.1) / Float(width))
        var maps: [HeatMap] = []
        // The RoI head's seeds each go back through every RoI's rows: batching them is what keeps it fast. Its layers
        // are shared by every target, so the pairs stay in one group and in order.
        gradients(leaf: pooled, outputs: outputs, count: pairs.count, perPass: seedsPerPass, writeSeed: writeSeed) { p, gradient in
            let row = rows[p]
            let roiMap = method.map(
                gradient: gradient + row * perRoI, activation: activations.storage.base + row * perRoI, channels: channels,
                height: side, width: side, boxCells: pairs[p].boxCells
            ).scalars
            let box = boxes[row].map { $0 * scale }
            let last = Float(side - 1)
            func position(_ cell: Int, _ low: Float, _ high: Float) -> Float? {
                let u = (Float(cell) - low) / max(high - low, 1e-6) * last
                return u.rounded(.down) < 0 || u.rounded(.up) > last ? nil : u
            }
            var grid = [Float](repeating: 0, count: height * width)
            for y in Swift.stride(from: max(Int(box[1].rounded(.down)), 0), through: min(Int(box[3].rounded(.up)), height - 1), by: 1) {
                guard let v = position(y, box[1], box[3]) else { continue }
                let v0 = Int(v.rounded(.down)), v1 = Int(v.rounded(.up)), fv = v - Float(v0)
                for x in Swift.stride(from: max(Int(box[0].rounded(.down)), 0), through: min(Int(box[2].rounded(.up)), width - 1), by: 1) {
                    guard let u = position(x, box[0], box[2]) else { continue }
                    let u0 = Int(u.rounded(.down)), u1 = Int(u.rounded(.up)), fu = u - Float(u0)
                    let top = roiMap[v0 * side + u0] * (1 - fu) + roiMap[v0 * side + u1] * fu
                    let bottom = roiMap[v1 * side + u0] * (1 - fu) + roiMap[v1 * side + u1] * fu
                    grid[y * width + x] = top * (1 - fv) + bottom * fv
                }
            }
            maps.append(
                HeatMap(
                    grid: Tensor(shape: [height, width], values: grid), stride: stride, inputSize: result.inputSize,
                    originalSize: result.originalSize))
        }
        return maps
    }

    /// The derivatives of the decoded box edge `target` (signed so that positive moves the edge outward: −x1, −y1,
    /// x2, y2) with respect to the deltas (dx, dy, dw, dh) of torchvision's `BoxCoder`, zero where the decoded edge
    /// is clipped to the image or dw/dh is clamped.
    static func edgeDerivatives(
        _ target: ExplanationTarget, deltas: [Float], reference: [Float], coder: BoxCoder, inputSize: ImageSize
    ) -> [Float] {
        guard let edge = [ExplanationTarget.x1, .y1, .x2, .y2].firstIndex(of: target) else { return [0, 0, 0, 0] }
        let decoded = deltas.withUnsafeBufferPointer { d in
            reference.withUnsafeBufferPointer { r in coder.decode(d.baseAddress!, references: r.baseAddress!) }
        }
        let value = [decoded.0, decoded.1, decoded.2, decoded.3][edge]
        let limit = Float(edge % 2 == 0 ? inputSize.width : inputSize.height)
        guard value > 0 && value < limit else { return [0, 0, 0, 0] }
        let horizontal = edge % 2 == 0
        let size = horizontal ? reference[2] - reference[0] : reference[3] - reference[1]
        let shift = horizontal ? 0 : 1
        let rawScale = deltas[2 + shift] / coder.weights[2 + shift]
        // x1 = cx + dx·w − ½·w·e^dw: outward (−x1) is −w·∂dx + ½·w·e^dw·∂dw; x2 is w·∂dx + ½·w·e^dw·∂dw.
        let sign: Float = edge < 2 ? -1 : 1
        var derivatives: [Float] = [0, 0, 0, 0]
        derivatives[shift] = sign * size / coder.weights[shift]
        derivatives[2 + shift] = rawScale < coder.scaleClamp ? 0.5 * size * expf(rawScale) / coder.weights[2 + shift] : 0
        return derivatives
    }
}

/// The softmax of a row of logits (max-shifted).
func softmax(_ z: [Float]) -> [Float] {
    let top = z.max() ?? 0
    let e = z.map { expf($0 - top) }
    let total = e.reduce(0, +)
    return e.map { $0 / total }
}

/// The feature map an explanation is computed on.
public enum FeatureSource: Sendable, Equatable {
    /// The FPN level that made the prediction (the paper's default).
    case predictionLevel
    /// A backbone stage feeding the FPN (0 is the finest returned stage: C3 for FCOS and RetinaNet, C2 for Faster
    /// R-CNN); the gradient goes through the FPN too.
    case backbone(stage: Int)
    /// Faster R-CNN: the RoI-aligned 7x7 features, whose map is projected back into the proposal box on its level
    /// (the official Odam-Train/NMS path, `roi_align_inv`).
    case roiFeatures

    /// Parses `level`, `backbone:K` or `roi`.
    public init?(argument: String) {
        if argument == "level" {
            self = .predictionLevel
        } else if argument == "roi" {
            self = .roiFeatures
        } else if argument.hasPrefix("backbone:"), let stage = Int(argument.dropFirst("backbone:".count)), stage >= 0 {
            self = .backbone(stage: stage)
        } else {
            return nil
        }
    }

    /// The leaf to differentiate (one image, recording) and the pyramid level `level` computed from it with its graph.
    func recorded(trace: ForwardTrace, image: Int, level: Int, pyramid: FeaturePyramid) -> (leaf: Tensor, level: Tensor) {
        func single(_ t: Tensor) -> Tensor { t.selecting(index: image, alongAxis: 0).reshaped([1] + Array(t.shape.dropFirst())).detached() }
        switch self {
        case .backbone(let stage):
            var features = trace.backbone.map(single)
            let leaf = features[min(stage, features.count - 1)].requiringGradient()
            features[min(stage, features.count - 1)] = leaf
            return (leaf, pyramid(features)[level])
        case .predictionLevel, .roiFeatures:
            let leaf = single(trace.pyramid[level]).requiringGradient()
            return (leaf, leaf)
        }
    }
}

extension ExplanationTarget {
    /// Which outputs of a one-stage head the target's seed lies on: the class logit (0), the class logit and FCOS's
    /// centerness (the score, 1), or the box regression (2). Seeds of one branch go back together
    /// (``SeededBackward/gradients(leaf:outputs:count:perPass:group:writeSeed:_:)``).
    var branch: Int {
        switch self {
        case .logit: 0
        case .score: 1
        case .x1, .y1, .x2, .y2: 2
        }
    }
}
