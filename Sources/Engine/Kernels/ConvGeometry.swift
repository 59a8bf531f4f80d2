/// The sizes of one 2-D convolution, as PyTorch's `conv2d` defines them.
package struct ConvGeometry: Sendable, Equatable {
    package var batch, inChannels, height, width: Int
    package var outChannels, kernelHeight, kernelWidth: Int
    package var strideY, strideX, padY, padX, dilationY, dilationX, groups: Int

    package init(
        batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernelHeight: Int, kernelWidth: Int,
        strideY: Int, strideX: Int, padY: Int, padX: Int, dilationY: Int, dilationX: Int, groups: Int
    ) {
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideY = strideY; self.strideX = strideX; self.padY = padY; self.padX = padX
        self.dilationY = dilationY; self.dilationX = dilationX; self.groups = groups
    }

    package var outHeight: Int { (height + 2 * padY - dilationY * (kernelHeight - 1) - 1) / strideY + 1 }
    package var outWidth: Int { (width + 2 * padX - dilationX * (kernelWidth - 1) - 1) / strideX + 1 }
    package var groupInChannels: Int { inChannels / groups }
    package var groupOutChannels: Int { outChannels / groups }
    /// Rows of the column matrix: one per (input channel of the group, kernel row, kernel column).
    package var columnRows: Int { groupInChannels * kernelHeight * kernelWidth }
    package var outPixels: Int { outHeight * outWidth }
    package var inPixels: Int { height * width }

    /// A 1x1 convolution with stride 1 and no padding is a plain matrix product over pixels.
    package var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideY == 1 && strideX == 1 && padY == 0 && padX == 0
    }

    /// Multiply-adds of the forward pass, times two.
    package var flops: Double {
        2 * Double(batch) * Double(outChannels) * Double(outPixels) * Double(columnRows)
    }
}

/// Unfolds input channels `channels` of one image into rows of the column matrix (`columnRows` × `outPixels`).
package func im2col(_ input: UnsafePointer<Float>, _ columns: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    im2col(input, columns, g, outputRows: 0..<g.outHeight)
}

/// ``im2col(_:_:_:)`` for the output rows `outputRows` only: each column-matrix row holds `outputRows.count × outWidth`
/// values, so a convolution can be computed in cache-sized tiles.
package func im2col(_ input: UnsafePointer<Float>, _ columns: UnsafeMutablePointer<Float>, _ g: ConvGeometry, outputRows: Range<Int>) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let rows = g.columnRows
    let outH = g.outHeight, outW = g.outWidth
    parallelFor(rows, costPerItem: g.outPixels) { range in
        for row in range {
            let channel = row / kernelArea
            let ky = (row % kernelArea) / g.kernelWidth, kx = row % g.kernelWidth
            let plane = input + channel * g.inPixels
            let out = columns + row * outputRows.count * outW
            let offsetX = kx * g.dilationX - g.padX
            // Output columns whose input column lies inside the image.
            let firstX = offsetX >= 0 ? 0 : (-offsetX + g.strideX - 1) / g.strideX
            let lastX = min(outW, (g.width - offsetX + g.strideX - 1) / g.strideX)
            for oy in outputRows {
                let iy = oy * g.strideY - g.padY + ky * g.dilationY
                let line = out + (oy - outputRows.lowerBound) * outW
                if iy < 0 || iy >= g.height || firstX >= lastX {
                    line.update(repeating: 0, count: outW)
                    continue
                }
                let source = plane + iy * g.width + offsetX
                if firstX > 0 { line.update(repeating: 0, count: firstX) }
                if g.strideX == 1 {
                    (line + firstX).update(from: source + firstX, count: lastX - firstX)
                } else {
                    for ox in firstX..<lastX { line[ox] = source[ox * g.strideX] }
                }
                if lastX < outW { (line + lastX).update(repeating: 0, count: outW - lastX) }
            }
        }
    }
}

/// Folds a column matrix back onto the input image, accumulating overlaps (the adjoint of ``im2col``).
package func col2im(_ columns: UnsafePointer<Float>, _ input: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let outH = g.outHeight, outW = g.outWidth
    // One channel per task: all rows of a channel write to that channel's plane only.
    parallelFor(g.groupInChannels, costPerItem: kernelArea * g.outPixels) { range in
        for channel in range {
            let plane = input + channel * g.inPixels
            for k in 0..<kernelArea {
                let ky = k / g.kernelWidth, kx = k % g.kernelWidth
                let row = columns + (channel * kernelArea + k) * g.outPixels
                let offsetX = kx * g.dilationX - g.padX
                let firstX = offsetX >= 0 ? 0 : (-offsetX + g.strideX - 1) / g.strideX
                let lastX = min(outW, (g.width - offsetX + g.strideX - 1) / g.strideX)
                if firstX >= lastX { continue }
                for oy in 0..<outH {
                    let iy = oy * g.strideY - g.padY + ky * g.dilationY
                    if iy < 0 || iy >= g.height { continue }
                    let target = plane + iy * g.width + offsetX
                    let line = row + oy * outW
                    for ox in firstX..<lastX { target[ox * g.strideX] += line[ox] }
                }
            }
        }
    }
}
