import Detection
import Engine

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

    /// Heat maps of `pairs` with respect to `leaf` ([1, C, H, W], recorded) through `outputs`.
    ///
    /// - Parameter writeSeed: fills the seed of pair `p`: one buffer per output, of that output's size, zeroed.
    func maps(
        leaf: Tensor, outputs: [Tensor], pairs: [Pair], stride: (Float, Float), result: ImageDetections,
        writeSeed: (_ pair: Int, _ seeds: [UnsafeMutablePointer<Float>]) -> Void
    ) -> [HeatMap] {
        let single = leaf.detached()
        let channels = single.shape[1], height = single.shape[2], width = single.shape[3]
        var maps: [HeatMap] = []
        for chunkStart in Swift.stride(from: 0, to: pairs.count, by: seedsPerPass) {
            let chunk = chunkStart..<min(chunkStart + seedsPerPass, pairs.count)
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
            let gradient =
                roots.isEmpty
                ? Tensor(zeros: [chunk.count] + leaf.shape) : vectorJacobianProducts(of: roots, seeds: used, withRespectTo: [leaf])[0]
            for (s, p) in chunk.enumerated() {
                let raw = method.map(
                    gradient: gradient.storage.base + s * channels * height * width, activation: single.storage.base, channels: channels,
                    height: height, width: width, boxCells: pairs[p].boxCells)
                maps.append(HeatMap(grid: raw, stride: stride, inputSize: result.inputSize, originalSize: result.originalSize))
            }
        }
        return maps
    }

    /// The derivatives of the decoded box edge `target` (signed so that positive moves the edge outward: −x1, −y1,
    /// x2, y2) with respect to the deltas (dx, dy, dw, dh) of torchvision's `BoxCoder`, zero where the decoded edge
    /// is clipped to the image or dw/dh is clamped.
    static func edgeDerivatives(
        _ target: ExplanationTarget, deltas: [Float], reference: [Float], coder: BoxCoder, inputSize: (height: Int, width: Int)
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
