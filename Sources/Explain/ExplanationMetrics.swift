import Detection
public import Engine

#if canImport(Glibc)
    import Glibc
#endif

/// The paper's explanation metrics on a normalized heat map [H, W] (values in [0, 1]) and ground truth, with the
/// definitions of the official evaluation code (`eval_pointgame.py`, `eval_odi.py`, `eval_mask_IoU.py`).
public enum ExplanationMetrics {
    /// A binary mask [H, W] (nonzero = inside).
    public typealias Mask = [Bool]

    /// The first pixel (row-major) with the map's maximum, as (x, y).
    public static func peak(_ map: Tensor) -> (x: Int, y: Int) {
        let width = map.shape[1]
        var best = 0
        map.withUnsafeBufferPointer { values in
            for i in 1..<values.count where values[i] > values[best] { best = i }
        }
        return (best % width, best / width)
    }

    /// Box pointing game: the peak lies strictly inside the box (x1, y1, x2, y2).
    public static func pointingHit(_ map: Tensor, box: Box<Float>) -> Bool {
        let (x, y) = peak(map)
        return box[0] < Float(x) && Float(x) < box[2] && box[1] < Float(y) && Float(y) < box[3]
    }

    /// Mask pointing game: the box test passes and the peak lies in the mask.
    public static func pointingHit(_ map: Tensor, box: Box<Float>, mask: Mask) -> Bool {
        let (x, y) = peak(map)
        return pointingHit(map, box: box) && mask[y * map.shape[1] + x]
    }

    /// The pixels of a box as the official code takes them: [floor(x1), ceil(x2)) × [floor(y1), ceil(y2)), clipped.
    public static func boxMask(_ box: Box<Float>, height: Int, width: Int) -> Mask {
        var mask = Mask(repeating: false, count: height * width)
        let x0 = max(0, Int(box[0].rounded(.down))), x1 = min(width, Int(box[2].rounded(.up)))
        let y0 = max(0, Int(box[1].rounded(.down))), y1 = min(height, Int(box[3].rounded(.up)))
        guard x0 < x1, y0 < y1 else { return mask }
        for y in y0..<y1 { for x in x0..<x1 { mask[y * width + x] = true } }
        return mask
    }

    /// Energy pointing game: the share of the map's mass inside `region`.
    public static func energy(_ map: Tensor, region: Mask) -> Double {
        var inside = 0.0, total = 0.0
        map.withUnsafeBufferPointer { values in
            for i in 0..<values.count {
                total += Double(values[i])
                if region[i] { inside += Double(values[i]) }
            }
        }
        return inside / (total + 1e-10)
    }

    /// Compactness: the map's spread around its peak, relative to the squared half-diagonal of the box (lower is
    /// more compact).
    public static func compactness(_ map: Tensor, box: Box<Float>) -> Double {
        let width = map.shape[1]
        let (px, py) = peak(map)
        var weighted = 0.0, total = 0.0
        map.withUnsafeBufferPointer { values in
            for i in 0..<values.count where values[i] != 0 {
                let dx = Double(i % width - px), dy = Double(i / width - py)
                weighted += Double(values[i]) * (dx * dx + dy * dy)
                total += Double(values[i])
            }
        }
        let w = Double(box[2] - box[0]), h = Double(box[3] - box[1])
        return (weighted / ((w * w + h * h) / 4 * total)).squareRoot()
    }

    /// Object discrimination index: the share of the map's mass on other objects among all objects' regions.
    public static func discrimination(_ map: Tensor, target: Mask, others: [Mask]) -> Double {
        var onOthers = 0.0, onAll = 0.0
        map.withUnsafeBufferPointer { values in
            for i in 0..<values.count {
                let other = others.contains { $0[i] }
                if other { onOthers += Double(values[i]) }
                if other || target[i] { onAll += Double(values[i]) }
            }
        }
        return onOthers / (onAll + 1e-10)
    }

    /// Visual explanation accuracy: IoU of {map > t} with the object's mask, for t = 0.1 … 0.9.
    public static func visualExplanationAccuracy(_ map: Tensor, mask: Mask) -> [Double] {
        (1...9).map { step in
            let threshold = Float(step) / 10
            var intersection = 0, union = 0
            map.withUnsafeBufferPointer { values in
                for i in 0..<values.count {
                    let on = values[i] > threshold
                    if on && mask[i] { intersection += 1 }
                    if on || mask[i] { union += 1 }
                }
            }
            return union == 0 ? 0 : Double(intersection) / Double(union)
        }
    }

    /// Rasterizes polygons (x0, y0, x1, y1, …) at integer pixel coordinates, with vertices truncated to integers as
    /// the official code's `cv2.fillPoly` input.
    public static func polygonMask(_ polygons: [[Float]], height: Int, width: Int) -> Mask {
        COCOAnnotations.rasterize(polygons, height: height, width: width, truncatingVertices: true, sampleOffset: 0)
    }
}
