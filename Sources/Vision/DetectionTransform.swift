public import Engine

/// torchvision's `GeneralizedRCNNTransform` for inference: normalize, resize so the short side is `minSize` and
/// the long side at most `maxSize` (bilinear, no antialiasing), and pad a batch to a multiple of `sizeDivisible`.
/// With `fixedSize`, every image is resized to that size instead, as TensorFlow's Object Detection API does.
public struct DetectionTransform: Sendable, Equatable, Codable {
    public var minSize: Int
    public var maxSize: Int
    public var mean: [Float]
    public var standardDeviation: [Float]
    public var sizeDivisible: Int
    /// A size every image is resized to, aspect ratio not kept, with TensorFlow 1's `ResizeBilinear` (no half-pixel
    /// centres: source = destination × in/out); nil resizes as torchvision.
    public var fixedSize: ImageSize? = nil

    public init(
        minSize: Int = 800, maxSize: Int = 1333, mean: [Float] = [0.485, 0.456, 0.406],
        standardDeviation: [Float] = [0.229, 0.224, 0.225], sizeDivisible: Int = 32
    ) {
        self.minSize = minSize
        self.maxSize = maxSize
        self.mean = mean
        self.standardDeviation = standardDeviation
        self.sizeDivisible = sizeDivisible
    }

    /// A batch ready for a detector: the padded tensor and each image's size before padding.
    public struct Batch: Sendable {
        public var tensor: Tensor
        /// (height, width) of each image after resizing, before padding.
        public var imageSizes: [ImageSize]
        /// (height, width) of each original image.
        public var originalSizes: [ImageSize]
    }

    /// The size an image of `height`×`width` is resized to, as torchvision computes it, but never below one pixel a
    /// side: a 4000x3 image at a 512 maximum would otherwise become 0 pixels high (torchvision fails there; odam
    /// keeps one row, so its boxes stay finite).
    public func resizedSize(height: Int, width: Int) -> ImageSize {
        if let fixedSize { return fixedSize }
        let scale = min(Double(minSize) / Double(min(height, width)), Double(maxSize) / Double(max(height, width)))
        return ImageSize(
            height: max(1, Int((Double(height) * scale).rounded(.down))), width: max(1, Int((Double(width) * scale).rounded(.down))))
    }

    /// Normalizes and resizes one [3, H, W] image tensor with values in [0, 1].
    public func prepare(_ image: Tensor) -> Tensor {
        let height = image.shape[1], width = image.shape[2]
        let meanTensor = Tensor(shape: [3, 1, 1], values: mean)
        let deviation = Tensor(shape: [3, 1, 1], values: standardDeviation)
        let normalized = (image - meanTensor) / deviation
        let size = resizedSize(height: height, width: width)
        if fixedSize != nil { return Self.tensorFlowResized(normalized, to: size) }
        return normalized.reshaped([1, 3, height, width]).interpolated(
            size: (size.height, size.width), mode: .bilinear(alignCorners: false)
        )
        .reshaped([3, size.height, size.width])
    }

    /// Normalizes, resizes and pads images into one batch.
    public func batch(_ images: [Tensor]) -> Batch {
        let prepared = images.map(prepare)
        let height = roundedUp(prepared.map { $0.shape[1] }.max() ?? 0)
        let width = roundedUp(prepared.map { $0.shape[2] }.max() ?? 0)
        let parts = prepared.map { image in
            image.padded([(0, width - image.shape[2]), (0, height - image.shape[1])]).reshaped([1, 3, height, width])
        }
        return Batch(
            tensor: Tensor.concatenated(parts, alongAxis: 0),
            imageSizes: prepared.map { ImageSize(height: $0.shape[1], width: $0.shape[2]) },
            originalSizes: images.map { ImageSize(height: $0.shape[1], width: $0.shape[2]) })
    }

    private func roundedUp(_ value: Int) -> Int {
        Int((Double(value) / Double(sizeDivisible)).rounded(.up)) * sizeDivisible
    }

    /// Maps [K, 4] boxes (x1, y1, x2, y2) from the resized image back to the original, as torchvision's `resize_boxes`.
    public static func boxesToOriginal(_ boxes: [Float], resized: ImageSize, original: ImageSize) -> [Float] {
        let ratioHeight = Float(original.height) / Float(resized.height)
        let ratioWidth = Float(original.width) / Float(resized.width)
        return boxes.enumerated().map { index, value in value * (index % 2 == 0 ? ratioWidth : ratioHeight) }
    }

    /// TensorFlow 1's `ResizeBilinear` with `align_corners` and `half_pixel_centers` false, on a [C, H, W] tensor:
    /// source row = row × (in / out) in float32, the lower neighbour its floor, the upper one clamped to the last row.
    public static func tensorFlowResized(_ image: Tensor, to size: ImageSize) -> Tensor {
        let (channels, height, width) = (image.shape[0], image.shape[1], image.shape[2])
        let scaleY = Float(height) / Float(size.height), scaleX = Float(width) / Float(size.width)
        func taps(_ count: Int, _ scale: Float, _ limit: Int) -> [(Int, Int, Float)] {
            (0..<count).map { i in
                let source = Float(i) * scale
                let lower = min(Int(source.rounded(.down)), limit - 1)
                return (lower, min(lower + 1, limit - 1), source - source.rounded(.down))
            }
        }
        let rows = taps(size.height, scaleY, height), columns = taps(size.width, scaleX, width)
        var out = Tensor(uninitializedShape: [channels, size.height, size.width])
        image.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for c in 0..<channels {
                    let plane = source.baseAddress! + c * height * width
                    for (y, (top, bottom, yLerp)) in rows.enumerated() {
                        for (x, (left, right, xLerp)) in columns.enumerated() {
                            let topLeft = plane[top * width + left], topRight = plane[top * width + right]
                            let bottomLeft = plane[bottom * width + left], bottomRight = plane[bottom * width + right]
                            let upper = topLeft + (topRight - topLeft) * xLerp
                            let lower = bottomLeft + (bottomRight - bottomLeft) * xLerp
                            target[(c * size.height + y) * size.width + x] = upper + (lower - upper) * yLerp
                        }
                    }
                }
            }
        }
        return out
    }
}
