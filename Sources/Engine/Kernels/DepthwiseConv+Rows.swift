/// The forward pass of 3x3 depthwise convolutions with stride 1 or 2 (all of MobileNetV2's and SSDLite's): each plane
/// is copied once into a zero-padded buffer, so that every output row is one branch-free pass that reads three input
/// rows and writes once, instead of nine passes over the output. Stride 2 splits each padded row into its even and
/// odd columns, so that all three taps of a row read contiguous memory.
extension DepthwiseConv {
    /// Whether the row kernel computes `g`.
    static func rowKernelApplies(to g: ConvGeometry) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.dilationY == 1 && g.dilationX == 1 && g.strideY == g.strideX
            && (g.strideX == 1 || g.strideX == 2)
    }

    static func forward3x3(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let stride = g.strideX, outH = g.outHeight, outW = g.outWidth
        // The padded plane: rows that the output reads, columns up to the last one read (at least the input's).
        let paddedH = (outH - 1) * stride + 3, paddedW = max((outW - 1) * stride + 3, g.width + g.padX)
        // Stride 2: each padded row as its even columns then its odd columns.
        let evenW = (paddedW + 1) / 2, rowLength = stride == 1 ? paddedW : evenW + paddedW / 2
        parallelFor(g.batch * g.outChannels, costPerItem: g.outPixels * 9) { planes in
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: paddedH * rowLength)
            defer { padded.deallocate() }
            // Every plane writes the same interior cells, so the padding stays zero from here on.
            padded.initialize(repeating: 0, count: paddedH * rowLength)
            for plane in planes {
                let channel = plane % g.outChannels
                let source = input + plane * g.inPixels, target = output + plane * g.outPixels
                for y in 0..<min(g.height, paddedH - g.padY) {
                    let from = source + y * g.width, row = padded + (y + g.padY) * rowLength
                    let columns = min(g.width, paddedW - g.padX)
                    if stride == 1 {
                        (row + g.padX).update(from: from, count: columns)
                    } else {
                        // Padded column c = x + padX goes to even slot c / 2 or odd slot evenW + c / 2.
                        let firstEven = g.padX & 1, firstOdd = 1 - firstEven
                        let even = row + (g.padX + firstEven) / 2, odd = row + evenW + (g.padX + firstOdd) / 2
                        for j in 0..<((columns - firstEven + 1) / 2) { even[j] = from[firstEven + 2 * j] }
                        for j in 0..<((columns - firstOdd + 1) / 2) { odd[j] = from[firstOdd + 2 * j] }
                    }
                }
                let w = weight + channel * 9
                let (w0, w1, w2, w3, w4, w5, w6, w7, w8) = (w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8])
                for oy in 0..<outH {
                    let r0 = padded + oy * stride * rowLength, r1 = r0 + rowLength, r2 = r1 + rowLength
                    let line = target + oy * outW
                    if stride == 1 {
                        for ox in 0..<outW {
                            var sum = w0 * r0[ox] + w1 * r0[ox + 1] + w2 * r0[ox + 2]
                            sum += w3 * r1[ox] + w4 * r1[ox + 1] + w5 * r1[ox + 2]
                            sum += w6 * r2[ox] + w7 * r2[ox + 1] + w8 * r2[ox + 2]
                            line[ox] = sum
                        }
                    } else {
                        let (o0, o1, o2) = (r0 + evenW, r1 + evenW, r2 + evenW)
                        for ox in 0..<outW {
                            var sum = w0 * r0[ox] + w1 * o0[ox] + w2 * r0[ox + 1]
                            sum += w3 * r1[ox] + w4 * o1[ox] + w5 * r1[ox + 1]
                            sum += w6 * r2[ox] + w7 * o2[ox] + w8 * r2[ox + 1]
                            line[ox] = sum
                        }
                    }
                }
            }
        }
    }

    /// The input gradient of a stride-1 3x3 depthwise convolution with padding p: the forward convolution of the output
    /// gradient with the kernel turned by 180 degrees and padding 2 - p.
    static func backwardInput3x3(
        gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let turned = UnsafeMutablePointer<Float>.allocate(capacity: g.outChannels * 9)
        defer { turned.deallocate() }
        for channel in 0..<g.outChannels {
            for tap in 0..<9 { turned[channel * 9 + tap] = weight[channel * 9 + 8 - tap] }
        }
        let transposed = ConvGeometry(
            batch: g.batch, inChannels: g.outChannels, height: g.outHeight, width: g.outWidth, outChannels: g.inChannels,
            kernelHeight: 3, kernelWidth: 3, strideY: 1, strideX: 1, padY: 2 - g.padY, padX: 2 - g.padX, dilationY: 1, dilationX: 1,
            groups: g.groups)
        forward3x3(input: gradOutput, weight: turned, output: gradInput, transposed)
    }
}
