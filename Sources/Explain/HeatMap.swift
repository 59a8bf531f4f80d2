public import Engine
public import Vision

/// What a heat map explains: one scalar of one prediction.
public enum ExplanationTarget: String, Sendable, Codable, CaseIterable {
    /// The confidence score (FCOS: sqrt(σ(class)·σ(centerness)); RetinaNet: σ(class); Faster R-CNN: softmax).
    case score
    /// The class logit (what Odam-NMS and Odam-Train compare).
    case logit
    /// The box edges, signed so that positive means the edge moves outward (FCOS: its l, t, r, b distances).
    case x1, y1, x2, y2
}

/// A heat map of one prediction and target.
public struct HeatMap: Sendable {
    /// ReLU(Σ_k Φ(∂Y/∂A_k) ∘ A_k) on the feature grid, cropped to the cells that cover the unpadded input.
    public var raw: Tensor
    /// The original image's (height, width).
    public var originalSize: ImageSize
    /// Pixels of the resized (padded) input per cell of `raw`'s level, (vertical, horizontal); nil for maps made at
    /// the image's own resolution (D-RISE).
    public var stride: (Float, Float)? = nil

    /// `raw` resized (bilinear, align_corners false) to the original image and min-max normalized to [0, 1];
    /// computed on each access (maps are compared at feature resolution, and only written ones need pixels).
    public var normalized: Tensor {
        let resized = raw.reshaped([1, 1, raw.shape[0], raw.shape[1]])
            .interpolated(size: (originalSize.height, originalSize.width), mode: .bilinear(alignCorners: false))
            .reshaped([originalSize.height, originalSize.width])
        return HeatMap.minMaxNormalized(resized)
    }
}

extension HeatMap {
    /// A heat map of a raw map on a feature grid (or at the image's resolution), for an image of `originalSize`.
    public init(raw: Tensor, imageSize: ImageSize, stride: (Float, Float)? = nil) {
        self.raw = raw
        self.originalSize = imageSize
        self.stride = stride
    }

    /// A heat map whose raw map [H, W] is at the original image's resolution (as D-RISE makes it).
    public init(atOriginalSize raw: Tensor) {
        self.init(raw: raw, originalSize: ImageSize(height: raw.shape[0], width: raw.shape[1]))
    }

    /// Builds a heat map from the raw map on a level's full (padded) grid.
    ///
    /// - Parameters:
    ///   - grid: [H, W] raw map over the padded batch.
    ///   - stride: pixels of the padded input per cell.
    ///   - inputSize: the resized image (height, width) before padding; cells beyond it are cropped.
    ///   - originalSize: the image's own size, which the normalized map takes.
    public init(grid: Tensor, stride: (Float, Float), inputSize: ImageSize, originalSize: ImageSize) {
        let (rows, columns) = Self.croppedSize(
            levelSize: ImageSize(height: grid.shape[0], width: grid.shape[1]), stride: stride, inputSize: inputSize)
        raw = grid.sliced(alongAxis: 0, start: 0, end: rows).sliced(alongAxis: 1, start: 0, end: columns)
        self.originalSize = originalSize
        self.stride = stride
    }

    /// The paper's combined map: the pixel-wise maximum of a prediction's class and box maps.
    public static func combined(_ maps: [Tensor]) -> Tensor {
        maps.dropFirst().reduce(maps[0]) { Tensor.maximum($0, $1) }
    }

    /// The cells of a level's (padded) grid that cover the unpadded input.
    package static func croppedSize(levelSize: ImageSize, stride: (Float, Float), inputSize: ImageSize) -> (Int, Int) {
        (
            min(levelSize.height, Int((Float(inputSize.height) / stride.0).rounded(.up))),
            min(levelSize.width, Int((Float(inputSize.width) / stride.1).rounded(.up)))
        )
    }

    /// (H - min) / max(max - min, float32 epsilon), as the official code; a map that is constant to float32 precision
    /// (a prediction's level of one cell, resized) is all zeros rather than its rounding noise stretched to [0, 1].
    public static func minMaxNormalized(_ map: Tensor) -> Tensor {
        var low = Float.infinity, high = -Float.infinity
        map.withUnsafeBufferPointer { values in
            for v in values {
                low = min(low, v)
                high = max(high, v)
            }
        }
        if map.count == 0 { return map }
        if high - low <= 1e-5 * max(abs(high), abs(low)) { return Tensor(zeros: map.shape) }
        let range = max(high - low, Float.ulpOfOne)
        var out = Tensor(uninitializedShape: map.shape)
        map.withUnsafeBufferPointer { values in
            out.withUnsafeMutableBufferPointer { target in
                for i in 0..<values.count { target[i] = (values[i] - low) / range }
            }
        }
        return out
    }

    /// ReLU(Σ_c g[c] · A[c]) for a gradient and activation of shape [C, H, W].
    public static func weightedActivation(gradient: UnsafePointer<Float>, activation: UnsafePointer<Float>, channels: Int, plane: Int)
        -> Tensor
    {
        var sums = [Float](repeating: 0, count: plane)
        for c in 0..<channels {
            let g = gradient + c * plane, a = activation + c * plane
            for i in 0..<plane { sums[i] += g[i] * a[i] }
        }
        return Tensor(shape: [plane], values: sums.map { max($0, 0) })
    }
}
