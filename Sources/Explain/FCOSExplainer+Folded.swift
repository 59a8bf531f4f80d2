import Detection
import Engine
import NN

/// The exact maps with each tower's first convolution folded into the map.
///
/// An ODAM map without Φ or a gradient variant is ReLU(Σ_c g_c ∘ F_c), and g_c, the input gradient of the tower's
/// first convolution (weights W, stride 1), is Σ_k Σ_tap W[k, c, tap] · dz_k shifted by the tap. So the map is
/// Σ_k Σ_tap dz_k(shifted) · V[k, tap], with V[k, tap](q) = Σ_c W[k, c, tap] · F_c(q) computed once per level and
/// image: each seed then needs k·9 multiply-adds per cell instead of that convolution's k·c·9. The gradient dz is taken
/// at the first convolution's output, a node of the recorded graph; both towers' parts of a score map add before the
/// ReLU.
extension FCOSExplainer {
    /// Whether maps fold the towers' first convolution: ODAM without Φ or a gradient variant (the map is then linear in
    /// the gradient), on the prediction's level, through stride-1 undilated ungrouped first convolutions.
    var folds: Bool {
        guard feature == .predictionLevel, case .odam(smoothing: .none, gradient: .identity) = method else { return false }
        return [detector.classificationTower, detector.regressionTower].allSatisfy { tower in
            let first = tower.convs[0]
            return first.stride == (1, 1) && first.dilation == (1, 1) && first.groups == 1
        }
    }

    /// A recorded tower's first convolution output (`first`, a node of the graph) with that convolution folded with
    /// the level (`fold`, [k·taps, H·W]) and its geometry.
    struct FoldedTower {
        let first: Tensor
        let fold: Tensor
        let kernel: (Int, Int), padding: (Int, Int)

        init(first: Tensor, fold: Tensor, _ tower: ConvTower) {
            self.first = first
            self.fold = fold
            let weight = tower.convs[0].weight.value
            kernel = (weight.shape[2], weight.shape[3])
            padding = tower.convs[0].padding
        }

        /// V[k·taps + tap](q) = Σ_c W[k, c, tap] · F_c(q) for `tower`'s first convolution W and the level F ([1, C, H, W]).
        static func fold(_ tower: ConvTower, level: Tensor) -> Tensor {
            let weight = tower.convs[0].weight.value
            let (outChannels, inChannels, taps) = (weight.shape[0], weight.shape[1], weight.shape[2] * weight.shape[3])
            return withoutGradients {
                let rows = weight.detached().reshaped([outChannels, inChannels, taps]).permuted([0, 2, 1]).reshaped([
                    outChannels * taps, inChannels,
                ])
                return Tensor.matmul(rows, level.detached().reshaped([inChannels, level.shape[2] * level.shape[3]]))
            }
        }

        /// Adds Σ_k Σ_tap dz_k(q − tap + pad) · V[k, tap](q) to `map` (H·W values) for the output gradient `dz`
        /// ([k, H, W]).
        func accumulate(_ dz: UnsafePointer<Float>, into map: UnsafeMutablePointer<Float>) {
            let channels = first.shape[1], height = first.shape[2], width = first.shape[3], plane = height * width
            let taps = kernel.0 * kernel.1
            let v = fold.storage.base
            for k in 0..<channels {
                let gradient = dz + k * plane
                for ty in 0..<kernel.0 {
                    let dy = ty - padding.0  // the source row is y - dy
                    let rows = max(0, dy)..<min(height, height + dy)
                    for tx in 0..<kernel.1 {
                        let dx = tx - padding.1
                        let columns = max(0, dx)..<min(width, width + dx)
                        guard !rows.isEmpty, !columns.isEmpty else { continue }
                        let weights = v + (k * taps + ty * kernel.1 + tx) * plane
                        for y in rows {
                            let out = map + y * width, w = weights + y * width, source = gradient + (y - dy) * width - dx
                            for x in columns { out[x] += source[x] * w[x] }
                        }
                    }
                }
            }
        }
    }

    /// The maps of `pairs` on a level recorded with folding: the pairs of each branch (``ExplanationTarget/branch``)
    /// go back to the towers that branch reaches.
    ///
    /// A class logit's map before its ReLU is kept with the trace (``ForwardTrace/recordings``, by `predictionKey`):
    /// a later score map of the same prediction, σ-weighted logit plus centerness, then only sends its centerness
    /// seed back (through the regression tower) and adds the kept logit map.
    func foldedMaps(
        _ state: RecordedLevel, pairs: [SeededBackward.Pair], entries: [[SeedEntry]], stride: (Float, Float), trace: ForwardTrace,
        result: ImageDetections, predictionKey: (Int) -> String
    ) -> [HeatMap] {
        let height = state.leaf.shape[2], width = state.leaf.shape[3]
        var maps = [HeatMap?](repeating: nil, count: pairs.count)
        func keptLogitMap(_ p: Int) -> [Float]? { trace.recordings.stored("fcos.logit-map.\(predictionKey(p))") }
        // Score pairs whose logit map is kept lose their logit entry and go with the regression tower's pairs.
        var seeds = entries
        var added = [(weight: Float, map: [Float])?](repeating: nil, count: pairs.count)
        for p in pairs.indices where pairs[p].target == .score {
            guard let kept = keptLogitMap(p), let logit = seeds[p].firstIndex(where: { $0.output == 0 }) else { continue }
            added[p] = (seeds[p][logit].value, kept)
            seeds[p].remove(at: logit)
        }
        // The towers a pair reaches: 0 classification, 1 both, 2 regression.
        func branch(_ p: Int) -> Int {
            let outputs = Set(seeds[p].map(\.output))
            return outputs == [0] ? 0 : outputs.contains(0) ? 1 : 2
        }
        let backward = SeededBackward(seedsPerPass: seedsPerPass, method: method)
        for (branch, members) in Dictionary(grouping: pairs.indices, by: branch).sorted(by: { $0.key < $1.key }) {
            let towers = (branch == 2 ? [] : [state.classTower]) + (branch == 0 ? [] : [state.boxTower])
            let reached = towers.compactMap { $0 }
            backward.gradients(
                leaves: reached.map(\.first), outputs: [state.logits, state.boxes, state.centerness], count: members.count,
                writeSeed: { p, buffers in
                    for entry in seeds[members[p]] { buffers[entry.output][entry.index] = entry.value }
                }
            ) { p, gradients in
                let pair = members[p]
                var sums = [Float](repeating: 0, count: height * width)
                sums.withUnsafeMutableBufferPointer { map in
                    for (tower, gradient) in zip(reached, gradients) { tower.accumulate(gradient, into: map.baseAddress!) }
                }
                if pairs[pair].target == .logit {
                    trace.recordings.store(sums, as: "fcos.logit-map.\(predictionKey(pair))")
                }
                if let (weight, kept) = added[pair] {
                    for i in sums.indices { sums[i] += weight * kept[i] }
                }
                let raw = Tensor(shape: [height, width], values: sums.map { max($0, 0) })
                maps[pair] = HeatMap(grid: raw, stride: stride, inputSize: result.inputSize, originalSize: result.originalSize)
            }
        }
        return maps.map { $0! }
    }
}
