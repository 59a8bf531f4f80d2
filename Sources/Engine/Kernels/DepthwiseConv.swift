/// Depthwise convolutions (one input and one output channel per group, as MobileNet's 3x3 layers) computed directly:
/// the generic path would run one tiny im2col and GEMM per channel, 576 of them for a 19x19 map.
package enum DepthwiseConv {
    /// Whether `g` is a depthwise convolution this kernel computes.
    package static func applies(to g: ConvGeometry) -> Bool {
        g.groups > 1 && g.groups == g.inChannels && g.groups == g.outChannels
    }

    /// The output columns whose kernel tap `kx` reads inside the row: ox in [first, last).
    @inline(__always)
    static func validColumns(_ g: ConvGeometry, kx: Int) -> (first: Int, last: Int, offset: Int) {
        let offset = kx * g.dilationX - g.padX
        let first = offset >= 0 ? 0 : (-offset + g.strideX - 1) / g.strideX
        let last = min(g.outWidth, max(0, (g.width - offset + g.strideX - 1) / g.strideX))
        return (first, max(first, last), offset)
    }

    /// y[n, c] = Σ_k w[c, k] · x[n, c] shifted by tap k (zero outside), the planes of (image, channel) in parallel.
    package static func forward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let taps = g.kernelHeight * g.kernelWidth, outW = g.outWidth
        parallelFor(g.batch * g.outChannels, costPerItem: g.outPixels * taps) { planes in
            for plane in planes {
                let channel = plane % g.outChannels
                let source = input + plane * g.inPixels, target = output + plane * g.outPixels
                target.update(repeating: 0, count: g.outPixels)
                for ky in 0..<g.kernelHeight {
                    for kx in 0..<g.kernelWidth {
                        let w = weight[channel * taps + ky * g.kernelWidth + kx]
                        let (first, last, offsetX) = validColumns(g, kx: kx)
                        for oy in 0..<g.outHeight {
                            let iy = oy * g.strideY - g.padY + ky * g.dilationY
                            guard iy >= 0 && iy < g.height else { continue }
                            let row = source + iy * g.width + offsetX, out = target + oy * outW
                            if g.strideX == 1 {
                                // Contiguous: the loop vectorizes.
                                for ox in first..<last { out[ox] += w * row[ox] }
                            } else {
                                for ox in first..<last { out[ox] += w * row[ox * g.strideX] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// dx[n, c] = Σ_k w[c, k] · dy[n, c] shifted back by tap k: each output cell's gradient added to the input cells
    /// it read.
    package static func backwardInput(
        gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let taps = g.kernelHeight * g.kernelWidth, outW = g.outWidth
        parallelFor(g.batch * g.inChannels, costPerItem: g.outPixels * taps) { planes in
            for plane in planes {
                let channel = plane % g.inChannels
                let source = gradOutput + plane * g.outPixels, target = gradInput + plane * g.inPixels
                target.update(repeating: 0, count: g.inPixels)
                for ky in 0..<g.kernelHeight {
                    for kx in 0..<g.kernelWidth {
                        let w = weight[channel * taps + ky * g.kernelWidth + kx]
                        let (first, last, offsetX) = validColumns(g, kx: kx)
                        for oy in 0..<g.outHeight {
                            let iy = oy * g.strideY - g.padY + ky * g.dilationY
                            guard iy >= 0 && iy < g.height else { continue }
                            let row = target + iy * g.width + offsetX, gradient = source + oy * outW
                            if g.strideX == 1 {
                                for ox in first..<last { row[ox] += w * gradient[ox] }
                            } else {
                                for ox in first..<last { row[ox * g.strideX] += w * gradient[ox] }
                            }
                        }
                    }
                }
            }
        }
    }
}
