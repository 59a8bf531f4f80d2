#if canImport(Glibc)
    import Glibc
#endif

/// Box operations on flat (x1, y1, x2, y2) float arrays, with torchvision's semantics.
public enum BoxOps {
    /// Clips boxes to an image of `height`×`width` (`clip_boxes_to_image`).
    public static func clip(_ boxes: inout [Float], height: Int, width: Int) {
        let h = Float(height), w = Float(width)
        for i in stride(from: 0, to: boxes.count, by: 4) {
            boxes[i] = min(max(boxes[i], 0), w)
            boxes[i + 1] = min(max(boxes[i + 1], 0), h)
            boxes[i + 2] = min(max(boxes[i + 2], 0), w)
            boxes[i + 3] = min(max(boxes[i + 3], 0), h)
        }
    }

    /// Indices of boxes whose width and height are both at least `minSize` (`remove_small_boxes`).
    public static func nonSmall(_ boxes: [Float], minSize: Float) -> [Int] {
        (0..<(boxes.count / 4)).filter { boxes[4 * $0 + 2] - boxes[4 * $0] >= minSize && boxes[4 * $0 + 3] - boxes[4 * $0 + 1] >= minSize }
    }

    @inline(__always)
    public static func area(_ b: UnsafePointer<Float>) -> Float { (b[2] - b[0]) * (b[3] - b[1]) }

    /// The area of each box.
    public static func areas(_ boxes: [Float]) -> [Float] {
        var areas = [Float](repeating: 0, count: boxes.count / 4)
        for i in areas.indices {
            let width: Float = boxes[4 * i + 2] - boxes[4 * i]
            let height: Float = boxes[4 * i + 3] - boxes[4 * i + 1]
            areas[i] = width * height
        }
        return areas
    }

    /// IoU of two (x1, y1, x2, y2) boxes, no +1 on widths; 0 when their union is empty.
    public static func iou<A: RandomAccessCollection<Float>, B: RandomAccessCollection<Float>>(_ a: A, _ b: B) -> Float
    where A.Index == Int, B.Index == Int {
        let w = max(0, min(a[2], b[2]) - max(a[0], b[0])), h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        let intersection = w * h
        let union = max(a[2] - a[0], 0) * max(a[3] - a[1], 0) + max(b[2] - b[0], 0) * max(b[3] - b[1], 0) - intersection
        return union > 0 ? intersection / union : 0
    }

    /// Intersection over union of boxes `i` and `j`, as torchvision's `box_iou` and `nms` compute it.
    @inline(__always)
    public static func iou(_ boxes: UnsafePointer<Float>, _ i: Int, _ j: Int, areas: UnsafePointer<Float>) -> Float {
        let a = boxes + 4 * i, b = boxes + 4 * j
        let width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        let height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        let intersection = width * height
        return intersection / (areas[i] + areas[j] - intersection)
    }

    /// `torchvision.ops.nms`: indices kept, in decreasing score order; a box is dropped when its IoU with a kept,
    /// higher-scoring box is greater than `threshold`.
    public static func nms(_ boxes: [Float], scores: [Float], threshold: Float) -> [Int] {
        let count = scores.count
        if count == 0 { return [] }
        let order = (0..<count).sorted { (i: Int, j: Int) -> Bool in scores[i] > scores[j] || (scores[i] == scores[j] && i < j) }
        let areas = Self.areas(boxes)
        var suppressed = [Bool](repeating: false, count: count)
        var keep: [Int] = []
        boxes.withUnsafeBufferPointer { b in
            areas.withUnsafeBufferPointer { a in
                for (rank, i) in order.enumerated() where !suppressed[i] {
                    keep.append(i)
                    for j in order[(rank + 1)...] where !suppressed[j] {
                        if iou(b.baseAddress!, i, j, areas: a.baseAddress!) > threshold { suppressed[j] = true }
                    }
                }
            }
        }
        return keep
    }

    /// `torchvision.ops.batched_nms`: NMS within each category. Like torchvision on the CPU, up to 4000 boxes
    /// are offset by category (`idx * (max coordinate + 1)`) and suppressed together; more run one NMS per
    /// category. The two differ only in float rounding.
    public static func batchedNMS(_ boxes: [Float], scores: [Float], categories: [Int], threshold: Float) -> [Int] {
        let count = scores.count
        if count == 0 { return [] }
        if count > 4000 {
            var keep: [Int] = []
            for category in Set(categories).sorted() {
                let members = (0..<count).filter { categories[$0] == category }
                let kept = nms(
                    members.flatMap { Array(boxes[(4 * $0)..<(4 * $0 + 4)]) }, scores: members.map { scores[$0] }, threshold: threshold)
                keep += kept.map { members[$0] }
            }
            return keep.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        }
        let maximum = boxes.max() ?? 0
        var shifted = boxes
        for i in 0..<count {
            let offset = Float(categories[i]) * (maximum + 1)
            for k in 0..<4 { shifted[4 * i + k] += offset }
        }
        return nms(shifted, scores: scores, threshold: threshold)
    }
}

/// torchvision's `BoxCoder`: box deltas (dx, dy, dw, dh) relative to reference boxes, with weights and the
/// `log(1000/16)` clamp on dw and dh.
public struct BoxCoder: Sendable, Equatable, Codable {
    public var weights: [Float]
    public var scaleClamp: Float

    public init(weights: [Float], scaleClamp: Float = logf(1000.0 / 16)) {
        self.weights = weights
        self.scaleClamp = scaleClamp
    }

    /// Decodes `deltas` (4 per box) against `references` (4 per box).
    public func decode(_ deltas: UnsafePointer<Float>, references: UnsafePointer<Float>) -> (Float, Float, Float, Float) {
        let width = references[2] - references[0], height = references[3] - references[1]
        let centerX = references[0] + 0.5 * width, centerY = references[1] + 0.5 * height
        let dx = deltas[0] / weights[0], dy = deltas[1] / weights[1]
        let dw = min(deltas[2] / weights[2], scaleClamp), dh = min(deltas[3] / weights[3], scaleClamp)
        let predictedX = dx * width + centerX, predictedY = dy * height + centerY
        let halfWidth = 0.5 * (expf(dw) * width), halfHeight = 0.5 * (expf(dh) * height)
        return (predictedX - halfWidth, predictedY - halfHeight, predictedX + halfWidth, predictedY + halfHeight)
    }
}

/// FCOS's `BoxLinearCoder`: distances (l, t, r, b) from the anchor's center, normalized by the anchor's size.
public enum BoxLinearCoder {
    public static func decode(_ codes: UnsafePointer<Float>, anchor: UnsafePointer<Float>) -> (Float, Float, Float, Float) {
        let centerX = 0.5 * (anchor[0] + anchor[2]), centerY = 0.5 * (anchor[1] + anchor[3])
        let width = anchor[2] - anchor[0], height = anchor[3] - anchor[1]
        return (centerX - codes[0] * width, centerY - codes[1] * height, centerX + codes[2] * width, centerY + codes[3] * height)
    }
}
