public import Detection
public import Engine
import NN
import Vision

/// D-RISE (Petsiuk et al. 2021), the black-box baseline: the detector runs on many randomly masked copies of the
/// image, and each mask counts towards a prediction's map with the weight of the masked image's best match to it.
///
/// As the official evaluation (`savefig_drise.py`): masks are 16x16 binary grids (keep probability 0.5) resized
/// bilinearly to a square one cell larger than the image's long side and cropped at a random offset; the masked
/// image is `image × mask`; a mask's weight for a target prediction is `max_j IoU(d_j, target) · ⟨p_j, p_target⟩`
/// over the masked image's pre-NMS candidates, with `p` the class-score vector (FCOS: √(σ(class)·σ(centerness)),
/// RetinaNet: σ(class), both L2-normalized; Faster R-CNN: the softmax, as is); the map is `Σ weight · mask`.
/// Masks are applied at the original resolution (the official code masks the resized input; the cell is about 1/16
/// of the long side either way).
public struct DRISE: Sendable {
    public var maskCount: Int
    public var grid: Int
    public var keepProbability: Float
    public var seed: UInt64

    public init(maskCount: Int = 5000, grid: Int = 16, keepProbability: Float = 0.5, seed: UInt64 = 0) {
        self.maskCount = maskCount
        self.grid = grid
        self.keepProbability = keepProbability
        self.seed = seed
    }

    /// The class-score vector of a candidate (see the type's description).
    public static func classVector(_ detector: any Detector, trace: ForwardTrace, candidate: Candidate, image: Int = 0) -> [Float] {
        switch detector {
        case let fcos as FCOS:
            let logits = trace.head["cls_logits"]![candidate.level], ctr = trace.head["bbox_ctrness"]![candidate.level]
            let plane = logits.shape[2] * logits.shape[3], cell = candidate.row * logits.shape[3] + candidate.column
            let quality = sigmoid(ctr.storage.base[image * plane + cell])
            return normalized(
                (0..<fcos.classCount).map { k in
                    (sigmoid(logits.storage.base[(image * fcos.classCount + k) * plane + cell]) * quality).squareRoot()
                })
        case let retinaNet as RetinaNet:
            let logits = trace.head["cls_logits"]![candidate.level]
            let plane = logits.shape[2] * logits.shape[3], cell = candidate.row * logits.shape[3] + candidate.column
            let classes = retinaNet.classCount, channels = logits.shape[1]
            return normalized(
                (0..<classes).map { k in sigmoid(logits.storage.base[(image * channels + candidate.anchor * classes + k) * plane + cell]) })
        default:
            let logits = trace.head["class_logits"]![0]
            let classes = logits.shape[1]
            return softmax((0..<classes).map { logits.storage.base[candidate.row * classes + $0] })
        }
    }

    static func normalized(_ v: [Float]) -> [Float] {
        let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return v.map { $0 / norm }
    }

    /// A mask's weight for each target: the best `IoU · ⟨p, p_target⟩` over the candidates of the masked image.
    /// Boxes are in the network's input pixels of the same image size, so IoUs compare like with like.
    public static func weights(targets: [(box: Box<Float>, vector: [Float])], candidates: [(box: Box<Float>, vector: [Float])]) -> [Float] {
        targets.map { target in
            var best: Float = 0
            for candidate in candidates {
                let overlap = BoxOps.iou(candidate.box, target.box)
                guard overlap > 0 else { continue }
                var similarity: Float = 0
                for k in 0..<min(candidate.vector.count, target.vector.count) { similarity += candidate.vector[k] * target.vector[k] }
                best = max(best, overlap * similarity)
            }
            return best
        }
    }

    /// Mask `index` at the image's size, values in [0, 1].
    func mask(_ random: inout RandomNumbers, height: Int, width: Int) -> [Float] {
        let cells = (0..<(grid * grid)).map { _ in random.unit() < keepProbability ? Float(1) : 0 }
        let longSide = max(height, width)
        let side = longSide + (longSide + grid - 1) / grid
        let offsetY = Int(random.unit() * Float(max(side - height, 1))), offsetX = Int(random.unit() * Float(max(side - width, 1)))
        let taps = InterpolationTaps(inSize: grid, outSize: side, mode: .bilinear(alignCorners: false))
        var values = [Float](repeating: 0, count: height * width)
        for y in 0..<height {
            let oy = y + offsetY
            let y0 = taps.low[oy], y1 = taps.high[oy], wy0 = taps.lowWeight[oy], wy1 = taps.highWeight[oy]
            for x in 0..<width {
                let ox = x + offsetX
                let x0 = taps.low[ox], x1 = taps.high[ox], wx0 = taps.lowWeight[ox], wx1 = taps.highWeight[ox]
                values[y * width + x] =
                    wy0 * (wx0 * cells[y0 * grid + x0] + wx1 * cells[y0 * grid + x1]) + wy1
                    * (wx0 * cells[y1 * grid + x0] + wx1 * cells[y1 * grid + x1])
            }
        }
        return values
    }

    /// D-RISE maps of `predictions` (indices into `result.candidates`, the detector's output on `image`, a
    /// [3, H, W] tensor in [0, 1]).
    public func explain(detector: any Detector, image: Tensor, trace: ForwardTrace, result: ImageDetections, predictions: [Int])
        -> [HeatMap]
    {
        let height = image.shape[1], width = image.shape[2], plane = height * width
        let targets = predictions.map { index in
            (box: result.candidates[index].box, vector: Self.classVector(detector, trace: trace, candidate: result.candidates[index]))
        }
        var saliency = [[Float]](repeating: [Float](repeating: 0, count: plane), count: predictions.count)
        var random = RandomNumbers(seed: seed)
        let pixels = image.scalars
        for _ in 0..<maskCount {
            let mask = self.mask(&random, height: height, width: width)
            var masked = [Float](repeating: 0, count: 3 * plane)
            for c in 0..<3 { for i in 0..<plane { masked[c * plane + i] = pixels[c * plane + i] * mask[i] } }
            let (maskedTrace, outputs) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
                var timings = StageTimings()
                return detector.forward(detector.transform.batch([Tensor(shape: [3, height, width], values: masked)]), timings: &timings)
            }
            let candidates = outputs[0].candidates.map { ($0.box, Self.classVector(detector, trace: maskedTrace, candidate: $0)) }
            let weights = Self.weights(targets: targets, candidates: candidates)
            for (p, weight) in weights.enumerated() where weight > 0 {
                saliency[p].withUnsafeMutableBufferPointer { s in
                    for i in 0..<plane { s[i] += weight * mask[i] }
                }
            }
        }
        return saliency.map { HeatMap(atOriginalSize: Tensor(shape: [height, width], values: $0)) }
    }
}
