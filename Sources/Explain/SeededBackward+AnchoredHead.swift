import Detection
import Engine

#if canImport(Glibc)
    import Glibc
#endif

extension SeededBackward {
    /// The maps of one level of an anchor-based one-stage head (RetinaNet, SSDLite), whose outputs are class logits
    /// [1, A·K, H, W] (channel anchor·K + label) and four box codes per anchor [1, A·4, H, W]: logit seeds 1, score
    /// seeds σ'(logit), edge seeds `edgeDerivatives(target, the prediction's four codes, its anchor's index on the
    /// level)` on its codes. Returns each pair's map with its prediction (`members` index) and target.
    func anchoredHeadMaps(
        leaf: Tensor, logits: Tensor, codes: Tensor, classes: Int, members: [Int], candidates: (Int) -> Candidate,
        targets: [ExplanationTarget], stride: (Float, Float), result: ImageDetections,
        edgeDerivatives: (_ target: ExplanationTarget, _ codes: [Float], _ anchorIndex: Int) -> [Float]
    ) -> [(member: Int, target: ExplanationTarget, map: HeatMap)] {
        let width = logits.shape[3], plane = logits.shape[2] * width
        let perCell = codes.shape[1] / 4
        let pairs = Self.pairs(members: members, targets: targets, boxes: { candidates($0).box }, stride: stride)
        let levelMaps = maps(leaf: leaf, outputs: [logits, codes], pairs: pairs, stride: stride, result: result) { p, seeds in
            let candidate = candidates(pairs[p].member)
            let cell = candidate.row * width + candidate.column
            let logitIndex = (candidate.anchor * classes + candidate.label) * plane + cell
            switch pairs[p].target {
            case .logit: seeds[0][logitIndex] = 1
            case .score:
                let probability = sigmoid(logits.storage.base[logitIndex])
                seeds[0][logitIndex] = probability * (1 - probability)
            case .x1, .y1, .x2, .y2:
                let values = (0..<4).map { codes.storage.base[(candidate.anchor * 4 + $0) * plane + cell] }
                let derivatives = edgeDerivatives(pairs[p].target, values, cell * perCell + candidate.anchor)
                for c in 0..<4 { seeds[1][(candidate.anchor * 4 + c) * plane + cell] = derivatives[c] }
            }
        }
        return zip(pairs, levelMaps).map { ($0.member, $0.target, $1) }
    }
}
