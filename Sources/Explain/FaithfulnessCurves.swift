public import Detection
public import Engine
import NN
import Vision

/// Deletion and insertion curves (the official `eval_delet.py` and `eval_insert.py`): pixels are removed from (or
/// restored into) the image in the order of the heat map, highest first, `max(1, ⌊A/100⌋)` pixels per step for a
/// ground-truth box of area A, 100 steps; every 10 steps the detector scores the object as the best candidate
/// score of its class among pre-NMS candidates overlapping the ground truth at IoU > 0.5 ("+1" convention).
///
/// Deletion replaces pixels with uniform noise and its curve is divided by the unperturbed score; insertion starts
/// from a black image and its curve starts at 0. Both have 11 points, at 0, 10, …, 100 steps; the AUC is the
/// trapezoid area over [0, 1] (the official code prints the curves only). Pixels are handled at the original
/// resolution (the official code at the network's input size).
public struct FaithfulnessCurves: Sendable {
    public var steps = 100
    public var scoreEvery = 10
    public var seed: UInt64

    public init(seed: UInt64 = 0) { self.seed = seed }

    public struct Curves: Sendable {
        public var deletion: [Double]
        public var insertion: [Double]
        public var deletionAUC: Double { Self.area(deletion) }
        public var insertionAUC: Double { Self.area(insertion) }

        static func area(_ curve: [Double]) -> Double {
            guard curve.count > 1 else { return 0 }
            let step = 1 / Double(curve.count - 1)
            return zip(curve, curve.dropFirst()).reduce(0) { $0 + ($1.0 + $1.1) / 2 * step }
        }
    }

    /// The object's score on an image: the best candidate of `label` whose box (original pixels) overlaps `box`
    /// at IoU > 0.5.
    public static func score(detector: any Detector, image: Tensor, box: Box<Float>, label: Int) -> Double {
        let result = withoutGradients { () -> ImageDetections in
            var timings = StageTimings()
            return detector.forward(detector.transform.batch([image]), timings: &timings).results[0]
        }
        var best: Float = 0
        for candidate in result.candidates where candidate.label == label {
            let original = DetectionTransform.boxToOriginal(candidate.box, resized: result.inputSize, original: result.originalSize)
            if ExplanationEvaluation.iouPlusOne(original, box) > 0.5 { best = max(best, candidate.score) }
        }
        return Double(best)
    }

    /// Both curves for one object: `image` [3, H, W] in [0, 1], `map` [H, W] (original resolution), the ground-truth
    /// `box` (x1, y1, x2, y2, original pixels) and class.
    public func curves(detector: any Detector, image: Tensor, map: Tensor, box: Box<Float>, label: Int) -> Curves {
        let height = image.shape[1], width = image.shape[2], plane = height * width
        let values = map.scalars
        // Highest first; ties in pixel order, so that runs are reproducible.
        let order = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        let area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
        let perStep = max(1, Int(area / 100))
        let original = image.scalars
        var random = RandomNumbers(seed: seed)
        var deleted = original, inserted = [Float](repeating: 0, count: 3 * plane)
        var deletion: [Double] = [], insertion: [Double] = [0]
        let first = Self.score(detector: detector, image: image, box: box, label: label)
        deletion.append(first > 0 ? 1 : 0)
        for step in 1...steps {
            for k in ((step - 1) * perStep)..<min(step * perStep, plane) {
                let pixel = order[k]
                for c in 0..<3 {
                    deleted[c * plane + pixel] = random.unit()
                    inserted[c * plane + pixel] = original[c * plane + pixel]
                }
            }
            guard step % scoreEvery == 0 else { continue }
            let removed = Self.score(detector: detector, image: Tensor(shape: image.shape, values: deleted), box: box, label: label)
            deletion.append(first > 0 ? removed / first : 0)
            insertion.append(Self.score(detector: detector, image: Tensor(shape: image.shape, values: inserted), box: box, label: label))
        }
        return Curves(deletion: deletion, insertion: insertion)
    }
}
