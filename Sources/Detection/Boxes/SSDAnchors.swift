import Foundation

/// TensorFlow Object Detection API's `ssd_anchor_generator` (`create_ssd_anchors` with a `MultipleGridAnchorGenerator`):
/// per feature map a scale evenly spaced from `minScale` to `maxScale`, anchors of each aspect ratio at that scale
/// plus one of ratio 1 at the geometric mean of this scale and the next, except the lowest layer, which has
/// (0.1, 1), (scale, 2) and (scale, 0.5). Anchors are centred on the cells ((i + 0.5) / H) in normalized
/// coordinates, in the order (row, column, anchor).
public struct SSDAnchors: Sendable, Equatable {
    public var minScale: Float = 0.2
    public var maxScale: Float = 0.95
    public var aspectRatios: [Float] = [1, 2, 0.5, 3, 0.3333]
    public var layers = 6

    public init() {}

    /// (scale, aspect ratio) of each anchor of a layer.
    public func boxSpecs(layer: Int) -> [(scale: Float, aspectRatio: Float)] {
        let scales = (0..<layers).map { minScale + (maxScale - minScale) * Float($0) / Float(layers - 1) } + [1]
        if layer == 0 { return [(0.1, 1), (scales[0], 2), (scales[0], 0.5)] }
        return aspectRatios.map { (scales[layer], $0) } + [((scales[layer] * scales[layer + 1]).squareRoot(), 1)]
    }

    public func anchorsPerLocation(layer: Int) -> Int { boxSpecs(layer: layer).count }

    /// [H·W·A, 4] anchors (y center, x center, height, width), normalized to the image.
    public func anchors(layer: Int, gridHeight: Int, gridWidth: Int) -> [Float] {
        let specs = boxSpecs(layer: layer)
        var out: [Float] = []
        out.reserveCapacity(gridHeight * gridWidth * specs.count * 4)
        for row in 0..<gridHeight {
            for column in 0..<gridWidth {
                // TensorFlow: offset 0.5 / H plus the stride 1 / H times the index, in float32.
                let y = Float(row) * (1 / Float(gridHeight)) + 0.5 / Float(gridHeight)
                let x = Float(column) * (1 / Float(gridWidth)) + 0.5 / Float(gridWidth)
                for (scale, ratio) in specs {
                    let root = ratio.squareRoot()
                    out += [y, x, scale / root, scale * root]
                }
            }
        }
        return out
    }
}
