/// Depthwise convolutions (one input and one output channel per group, as MobileNet's 3x3 layers) computed directly:
/// the generic path would run one tiny im2col and GEMM per channel, 576 of them for a 19x19 map.
package enum DepthwiseConv {
    /// Whether `g` is a depthwise convolution this kernel computes.
    package static func applies(to g: ConvGeometry) -> Bool {
        g.groups > 1 && g.groups == g.inChannels && g.groups == g.outChannels
    }

    /// y[n, c] = Σ_k w[c, k] · x[n, c] shifted by tap k (zero outside), the planes of (image, channel) in parallel.
    package static func forward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        if rowKernelApplies(to: g) {
            forward3x3(input: input, weight: weight, output: output, g)
            return
        }
        sweep(inputSide: UnsafeMutablePointer(mutating: input), outputSide: output, weight: weight, g, backward: false)
    }

    /// dx[n, c] = Σ_k w[c, k] · dy[n, c] shifted back by tap k: each output cell's gradient added to the input cells
    /// it read.
    package static func backwardInput(
        gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        if rowKernelApplies(to: g), g.strideX == 1, g.padY <= 2, g.padX <= 2 {
            backwardInput3x3(gradOutput: gradOutput, weight: weight, gradInput: gradInput, g)
            return
        }
        sweep(inputSide: gradInput, outputSide: UnsafeMutablePointer(mutating: gradOutput), weight: weight, g, backward: true)
    }

    /// Visits every (tap, output row) pair of each plane once: forward gathers input cells into the (zeroed) output,
    /// backward scatters output gradients into the (zeroed) input gradient. Only the side written is modified.
    static func sweep(
        inputSide: UnsafeMutablePointer<Float>, outputSide: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, _ g: ConvGeometry,
        backward: Bool
    ) {
        let taps = g.kernelHeight * g.kernelWidth, outW = g.outWidth, stride = g.strideX
        parallelFor(g.batch * g.outChannels, costPerItem: g.outPixels * taps) { planes in
            for plane in planes {
                let channel = plane % g.outChannels
                let inputPlane = inputSide + plane * g.inPixels, outputPlane = outputSide + plane * g.outPixels
                if backward {
                    inputPlane.update(repeating: 0, count: g.inPixels)
                } else {
                    outputPlane.update(repeating: 0, count: g.outPixels)
                }
                for ky in 0..<g.kernelHeight {
                    for kx in 0..<g.kernelWidth {
                        let w = weight[channel * taps + ky * g.kernelWidth + kx]
                        // The output columns whose tap reads inside the row.
                        let offset = kx * g.dilationX - g.padX
                        let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
                        let last = max(first, min(outW, (g.width - offset + stride - 1) / stride))
                        for oy in 0..<g.outHeight {
                            let iy = oy * g.strideY - g.padY + ky * g.dilationY
                            guard iy >= 0 && iy < g.height else { continue }
                            let row = inputPlane + iy * g.width + offset, line = outputPlane + oy * outW
                            if backward {
                                for ox in first..<last { row[ox * stride] += w * line[ox] }
                            } else {
                                for ox in first..<last { line[ox] += w * row[ox * stride] }
                            }
                        }
                    }
                }
            }
        }
    }
}
