/// torchvision's `AnchorGenerator`: per FPN level, anchors of each size and aspect ratio at every cell.
public struct AnchorGenerator: Sendable, Equatable, Codable {
    public var sizes: [[Float]]
    public var aspectRatios: [[Float]]

    public init(sizes: [[Float]], aspectRatios: [[Float]]) {
        precondition(sizes.count == aspectRatios.count, "one aspect-ratio list per level")
        self.sizes = sizes
        self.aspectRatios = aspectRatios
    }

    public func anchorsPerLocation(level: Int) -> Int { sizes[level].count * aspectRatios[level].count }

    /// Cell anchors centred on 0, rounded half to even as `torch.round`: ratio-major, then size.
    func cellAnchors(level: Int) -> [Float] {
        var anchors: [Float] = []
        for ratio in aspectRatios[level] {
            let heightRatio = ratio.squareRoot(), widthRatio = 1 / heightRatio
            for size in sizes[level] {
                let w = widthRatio * size, h = heightRatio * size
                anchors += [-w, -h, w, h].map { ($0 / 2).rounded(.toNearestOrEven) }
            }
        }
        return anchors
    }

    /// Anchors of one level on a `gridHeight`×`gridWidth` grid for an input of `imageHeight`×`imageWidth`
    /// (padded batch size): (x1, y1, x2, y2) for each (row, column, anchor), in that order.
    public func anchors(level: Int, gridHeight: Int, gridWidth: Int, imageHeight: Int, imageWidth: Int) -> [Float] {
        let strideY = imageHeight / gridHeight, strideX = imageWidth / gridWidth
        let cell = cellAnchors(level: level)
        var out: [Float] = []
        out.reserveCapacity(gridHeight * gridWidth * cell.count)
        for y in 0..<gridHeight {
            for x in 0..<gridWidth {
                let shiftX = Float(x * strideX), shiftY = Float(y * strideY)
                for a in stride(from: 0, to: cell.count, by: 4) {
                    out += [shiftX + cell[a], shiftY + cell[a + 1], shiftX + cell[a + 2], shiftY + cell[a + 3]]
                }
            }
        }
        return out
    }
}
