/// 2-D convolution (stride, padding, dilation, groups) and its gradients.
///
/// General convolutions unfold the input (im2col) and multiply with one GEMM per image and group; 1x1
/// convolutions with stride 1 are plain GEMMs; 3x3 stride-1 convolutions with enough channels use Winograd
/// F(2x2, 3x3) (see ``WinogradConv``).
extension Tensor {
    /// `torch.nn.functional.conv2d`. `x` is [N, C, H, W], `weight` is [O, C/groups, kH, kW], `bias` is [O].
    public static func conv2d(
        _ x: Tensor, weight: Tensor, bias: Tensor? = nil,
        stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1
    ) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d input \(x.shape), weight \(weight.shape)")
        precondition(
            x.shape[1] == weight.shape[1] * groups && weight.shape[0] % groups == 0,
            "conv2d input \(x.shape) does not fit weight \(weight.shape) with \(groups) groups")
        let g = ConvGeometry(
            batch: x.shape[0], inChannels: x.shape[1], height: x.shape[2], width: x.shape[3],
            outChannels: weight.shape[0], kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
            strideY: stride.0, strideX: stride.1, padY: padding.0, padX: padding.1,
            dilationY: dilation.0, dilationX: dilation.1, groups: groups)
        precondition(g.outHeight > 0 && g.outWidth > 0, "conv2d output would be empty for input \(x.shape)")
        let result = Tensor(uninitializedShape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        if WinogradConv.applies(to: g) {
            WinogradConv.forward(input: x.storage.base, weightStorage: weight.storage, output: result.storage.base, g)
        } else {
            ConvKernels.forward(input: x.storage.base, weight: weight.storage.base, output: result.storage.base, g)
        }
        if let bias {
            precondition(bias.shape == [g.outChannels], "conv2d bias \(bias.shape)")
            addChannelBias(result, bias)
        }
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        guard recordsGradient(inputs) else { return result }
        let (cx, cw) = (x.detached(), weight.detached())
        return result.recorded("conv2d", inputs: inputs, seedBatched: true) { gradOut, needed in
            let seeds = gradOut.rank - 4 == 1 ? gradOut.shape[0] : 1
            var grads: [Tensor?] = [nil, nil]
            if needed[0] {
                var batched = g
                batched.batch = g.batch * seeds
                let dx = Tensor(uninitializedShape: Array(gradOut.shape.prefix(gradOut.rank - 4)) + cx.shape)
                if WinogradConv.appliesToBackwardInput(of: batched) {
                    WinogradConv.backwardInput(
                        gradOutput: gradOut.storage.base, weightStorage: cw.storage, gradInput: dx.storage.base, batched)
                } else {
                    ConvKernels.backwardInput(
                        gradOutput: gradOut.storage.base, weight: cw.storage.base, gradInput: dx.storage.base, batched)
                }
                grads[0] = dx
            }
            if needed[1] {
                let perSeed = (0..<seeds).map { seed -> Tensor in
                    let dw = Tensor(zeros: cw.shape)
                    let offset = seed * g.batch * g.outChannels * g.outPixels
                    ConvKernels.backwardWeight(
                        input: cx.storage.base, gradOutput: gradOut.storage.base + offset, gradWeight: dw.storage.base, g)
                    return dw
                }
                grads[1] = gradOut.rank == 5 ? Tensor.stacked(perSeed) : perSeed[0]
            }
            if needed.count > 2 {
                let lead = gradOut.rank - 4
                grads.append(needed[2] ? gradOut.sum(alongAxes: [lead, lead + 2, lead + 3]) : nil)
            }
            return grads
        }
    }

    /// A convolution followed by `+ residual` (optional) and a ReLU (optional), as one op.
    ///
    /// Without gradient recording the bias, the residual and the ReLU are applied in one pass over the output;
    /// with recording it is the composition of ``conv2d(_:weight:bias:stride:padding:dilation:groups:)``, `+` and
    /// ``relu()``, so gradients are those of the parts.
    /// With `reluCeiling`, the ReLU is capped there too (ReLU6: `reluCeiling: 6`).
    public static func conv2d(
        _ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), groups: Int = 1,
        adding residual: Tensor? = nil, relu: Bool, reluCeiling: Float? = nil
    ) -> Tensor {
        if recordsGradient([x, weight] + (bias.map { [$0] } ?? []) + (residual.map { [$0] } ?? [])) {
            var y = conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, groups: groups)
            if let residual { y = y + residual }
            guard relu else { return y }
            return reluCeiling.map { y.clamped(min: 0, max: $0) } ?? y.relu()
        }
        let y = conv2d(x, weight: weight, bias: nil, stride: stride, padding: padding, groups: groups)
        let ceiling = relu ? (reluCeiling ?? Float.infinity) : Float.infinity
        precondition(residual == nil || residual!.shape == y.shape, "residual \(residual!.shape) for output \(y.shape)")
        let channels = y.shape[1], plane = y.shape[2] * y.shape[3]
        let po = y.storage.base, pb = bias?.storage.base, pr = residual?.storage.base
        parallelFor(y.shape[0] * channels, costPerItem: plane) { range in
            for nc in range {
                let shift = pb?[nc % channels] ?? 0
                let out = po + nc * plane
                if let pr {
                    let add = pr + nc * plane
                    if relu {
                        for i in 0..<plane { out[i] = Swift.min(Swift.max(out[i] + shift + add[i], 0), ceiling) }
                    } else {
                        for i in 0..<plane { out[i] += shift + add[i] }
                    }
                } else if relu {
                    for i in 0..<plane { out[i] = Swift.min(Swift.max(out[i] + shift, 0), ceiling) }
                } else if shift != 0 {
                    for i in 0..<plane { out[i] += shift }
                }
            }
        }
        return y
    }

    /// Adds `bias[c]` to every element of channel `c` of an [N, C, H, W] tensor, in place.
    package static func addChannelBias(_ tensor: Tensor, _ bias: Tensor) {
        let channels = tensor.shape[1], plane = tensor.shape[2] * tensor.shape[3]
        let po = tensor.storage.base, pb = bias.storage.base
        parallelFor(tensor.shape[0] * channels, costPerItem: plane) { range in
            for nc in range {
                let value = pb[nc % channels]
                let line = po + nc * plane
                for i in 0..<plane { line[i] += value }
            }
        }
    }
}

/// The convolution kernels on raw buffers.
package enum ConvKernels {
    package static func forward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        if WinogradConv.applies(to: g) {
            WinogradConv.forward(input: input, weight: weight, output: output, g)
            return
        }
        if DepthwiseConv.applies(to: g) {
            DepthwiseConv.forward(input: input, weight: weight, output: output, g)
            return
        }
        let k = g.columnRows
        if !g.isPointwise && g.groups == 1 && g.outPixels * k >= 1 << 20 {
            tiledForward(input: input, weight: weight, output: output, g)
            return
        }
        let columns = g.isPointwise ? nil : TensorStorage(uninitializedCount: k * g.outPixels)
        for n in 0..<g.batch {
            for group in 0..<g.groups {
                let image = input + (n * g.inChannels + group * g.groupInChannels) * g.inPixels
                let source: UnsafePointer<Float>
                if let columns {
                    im2col(image, columns.base, g)
                    source = UnsafePointer(columns.base)
                } else {
                    source = image
                }
                sgemm(
                    m: g.groupOutChannels, n: g.outPixels, k: k,
                    a: weight + group * g.groupOutChannels * k, lda: k, b: source, ldb: g.outPixels,
                    c: output + (n * g.outChannels + group * g.groupOutChannels) * g.outPixels, ldc: g.outPixels)
            }
        }
    }

    /// im2col and GEMM in tiles of output rows, each thread on its own tiles with a column buffer of about 1 MiB
    /// that stays in its L2 cache, instead of one column matrix of the whole image written to memory and read back.
    static func tiledForward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let k = g.columnRows, outW = g.outWidth
        let rowsPerTile = max(1, (1 << 18) / max(k * outW, 1))
        let tilesPerImage = (g.outHeight + rowsPerTile - 1) / rowsPerTile
        parallelFor(g.batch * tilesPerImage, costPerItem: 1 << 20) { range in
            let columns = TensorStorage(uninitializedCount: k * rowsPerTile * outW)
            for tile in range {
                let n = tile / tilesPerImage, first = (tile % tilesPerImage) * rowsPerTile
                let rows = first..<min(g.outHeight, first + rowsPerTile)
                im2col(input + n * g.inChannels * g.inPixels, columns.base, g, outputRows: rows)
                sgemm(
                    m: g.outChannels, n: rows.count * outW, k: k, a: weight, lda: k, b: columns.base, ldb: rows.count * outW,
                    c: output + n * g.outChannels * g.outPixels + first * outW, ldc: g.outPixels)
            }
        }
    }

    /// dW += dY · im2col(X)ᵀ over tiles of output rows whose columns stay in cache (as ``tiledForward``), the tiles
    /// shared out among the threads, each accumulating into a gradient of its own that is summed at the end.
    static func tiledBackwardWeight(
        input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>, gradWeight: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let k = g.columnRows, outW = g.outWidth, weightCount = g.outChannels * k
        let rowsPerTile = max(1, (1 << 18) / max(k * outW, 1))
        let tilesPerImage = (g.outHeight + rowsPerTile - 1) / rowsPerTile
        let tiles = g.batch * tilesPerImage
        let threads = ComputeThreads.isInsideParallelRegion ? 1 : max(1, min(ComputeThreads.count, tiles))
        let partials = threads > 1 ? TensorStorage(zeroedCount: (threads - 1) * weightCount) : nil
        parallelFor(threads, costPerItem: 1 << 30) { range in
            for worker in range {
                let target = worker == 0 ? gradWeight : partials!.base + (worker - 1) * weightCount
                let columns = TensorStorage(uninitializedCount: k * rowsPerTile * outW)
                for tile in stride(from: worker * tiles / threads, to: (worker + 1) * tiles / threads, by: 1) {
                    let n = tile / tilesPerImage, first = (tile % tilesPerImage) * rowsPerTile
                    let rows = first..<min(g.outHeight, first + rowsPerTile)
                    im2col(input + n * g.inChannels * g.inPixels, columns.base, g, outputRows: rows)
                    sgemm(
                        transposeB: true, m: g.outChannels, n: k, k: rows.count * outW,
                        a: gradOutput + n * g.outChannels * g.outPixels + first * outW, lda: g.outPixels, b: columns.base,
                        ldb: rows.count * outW, beta: 1, c: target, ldc: k)
                }
            }
        }
        if let partials {
            for worker in 1..<threads {
                let partial = partials.base + (worker - 1) * weightCount
                for i in 0..<weightCount { gradWeight[i] += partial[i] }
            }
        }
    }

    /// dX from dY; `g.batch` may count several seeds times the images.
    package static func backwardInput(
        gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        if WinogradConv.appliesToBackwardInput(of: g) {
            WinogradConv.backwardInput(gradOutput: gradOutput, weight: weight, gradInput: gradInput, g)
            return
        }
        if DepthwiseConv.applies(to: g) {
            DepthwiseConv.backwardInput(gradOutput: gradOutput, weight: weight, gradInput: gradInput, g)
            return
        }
        let k = g.columnRows
        let columns = g.isPointwise ? nil : TensorStorage(uninitializedCount: k * g.outPixels)
        if !g.isPointwise { gradInput.update(repeating: 0, count: g.batch * g.inChannels * g.inPixels) }
        for n in 0..<g.batch {
            for group in 0..<g.groups {
                let image = gradInput + (n * g.inChannels + group * g.groupInChannels) * g.inPixels
                let gradOut = gradOutput + (n * g.outChannels + group * g.groupOutChannels) * g.outPixels
                let target = columns?.base ?? image
                sgemm(
                    transposeA: true, m: k, n: g.outPixels, k: g.groupOutChannels,
                    a: weight + group * g.groupOutChannels * k, lda: k, b: gradOut, ldb: g.outPixels,
                    c: target, ldc: g.outPixels)
                if let columns { col2im(columns.base, image, g) }
            }
        }
    }

    /// dW += from X and dY (gradWeight must be zeroed or hold a partial sum).
    package static func backwardWeight(
        input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>, gradWeight: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        if g.groups == 1 && !g.isPointwise {
            tiledBackwardWeight(input: input, gradOutput: gradOutput, gradWeight: gradWeight, g)
            return
        }
        let k = g.columnRows
        let columns = g.isPointwise ? nil : TensorStorage(uninitializedCount: k * g.outPixels)
        for n in 0..<g.batch {
            for group in 0..<g.groups {
                let image = input + (n * g.inChannels + group * g.groupInChannels) * g.inPixels
                let source: UnsafePointer<Float>
                if let columns {
                    im2col(image, columns.base, g)
                    source = UnsafePointer(columns.base)
                } else {
                    source = image
                }
                sgemm(
                    transposeB: true, m: g.groupOutChannels, n: k, k: g.outPixels,
                    a: gradOutput + (n * g.outChannels + group * g.groupOutChannels) * g.outPixels, lda: g.outPixels,
                    b: source, ldb: g.outPixels, beta: 1,
                    c: gradWeight + group * g.groupOutChannels * k, ldc: k)
            }
        }
    }
}
