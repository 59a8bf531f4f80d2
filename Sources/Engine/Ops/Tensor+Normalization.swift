#if canImport(Glibc)
    import Glibc
#endif

/// Normalization ops: per-channel affine (frozen batch-norm), batch-norm with running statistics, group-norm.
extension Tensor {
    /// `x * scale[c] + shift[c]` over channel axis 1 of an [N, C, ...] tensor.
    public static func channelAffine(_ x: Tensor, scale: Tensor, shift: Tensor) -> Tensor {
        let channels = x.shape[1]
        precondition(scale.shape == [channels] && shift.shape == [channels], "channel affine \(x.shape), \(scale.shape), \(shift.shape)")
        let plane = x.shape.suffix(from: 2).reduce(1, *)
        let result = Tensor(uninitializedShape: x.shape)
        let pi = x.storage.base, po = result.storage.base, ps = scale.storage.base, pt = shift.storage.base
        parallelFor(x.shape[0] * channels, costPerItem: plane) { range in
            for nc in range {
                let a = ps[nc % channels], b = pt[nc % channels]
                let src = pi + nc * plane, dst = po + nc * plane
                for i in 0..<plane { dst[i] = src[i] * a + b }
            }
        }
        guard recordsGradient(x, scale, shift) else { return result }
        let cx = x.detached(), cs = scale.detached()
        let spatial = [channels] + [Int](repeating: 1, count: x.rank - 2)
        return result.recorded("channel_affine", inputs: [x, scale, shift], seedBatched: true) { g, needed in
            let lead = g.rank - cx.rank
            let reduceAxes = [lead] + Array((lead + 2)..<g.rank)
            let leadShape = Array(g.shape.prefix(lead))
            return [
                needed[0] ? g * cs.reshaped(spatial) : nil,
                needed[1] ? (g * cx).sum(alongAxes: reduceAxes).reshaped(leadShape + [channels]) : nil,
                needed[2] ? g.sum(alongAxes: reduceAxes).reshaped(leadShape + [channels]) : nil,
            ]
        }
    }

    /// torchvision's `FrozenBatchNorm2d`: batch-norm with fixed statistics and affine parameters.
    public static func frozenBatchNorm(
        _ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVariance: Tensor, epsilon: Float = 1e-5
    ) -> Tensor {
        let scale = weight * (runningVariance + epsilon).sqrt().reciprocal()
        let shift = bias - runningMean * scale
        return channelAffine(x, scale: scale, shift: shift)
    }

    public func reciprocal() -> Tensor {
        unary("reciprocal", { 1 / $0 }, derivative: { _, y in -y * y })
    }

    /// `torch.nn.functional.batch_norm`. In training mode it normalizes with the batch statistics and updates the
    /// running statistics in place (momentum as PyTorch: `new = (1 - m) * old + m * batch`, unbiased variance);
    /// otherwise it uses the running statistics.
    public static func batchNorm(
        _ x: Tensor, weight: Tensor, bias: Tensor, runningMean: inout Tensor, runningVariance: inout Tensor,
        training: Bool, momentum: Float = 0.1, epsilon: Float = 1e-5
    ) -> Tensor {
        if !training {
            let scale = weight / (runningVariance + epsilon).sqrt()
            return channelAffine(x, scale: scale, shift: bias - runningMean * scale)
        }
        let n = x.shape[0], channels = x.shape[1], plane = x.shape.suffix(from: 2).reduce(1, *)
        let stats = NormalizationStatistics(
            x, rows: n, channels: channels, groups: channels, plane: plane, epsilon: epsilon, perChannel: true)
        let count = Float(n * plane)
        var newMean = runningMean.detached(), newVariance = runningVariance.detached()
        newMean.makeStorageUnique()
        newVariance.makeStorageUnique()
        for c in 0..<channels {
            newMean.storage.base[c] = (1 - momentum) * newMean.storage.base[c] + momentum * stats.mean[c]
            let unbiased = stats.variance[c] * count / Swift.max(count - 1, 1)
            newVariance.storage.base[c] = (1 - momentum) * newVariance.storage.base[c] + momentum * unbiased
        }
        runningMean = newMean
        runningVariance = newVariance
        return normalizeWithStatistics(x, stats, weight: weight, bias: bias, name: "batch_norm")
    }

    /// `torch.nn.functional.group_norm` over an [N, C, ...] tensor with `groups` groups of channels; with `relu`,
    /// followed by a ReLU (in the same pass when no gradient is recorded).
    public static func groupNorm(
        _ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, epsilon: Float = 1e-5, relu: Bool = false
    ) -> Tensor {
        let n = x.shape[0], channels = x.shape[1], plane = x.shape.suffix(from: 2).reduce(1, *)
        precondition(channels % groups == 0, "group_norm: \(channels) channels in \(groups) groups")
        let stats = NormalizationStatistics(
            x, rows: n, channels: channels, groups: groups, plane: plane, epsilon: epsilon, perChannel: false)
        if relu && !recordsGradient(x, weight, bias) {
            let result = Tensor(uninitializedShape: x.shape)
            stats.normalize(x.storage.base, weight: weight.storage.base, bias: bias.storage.base, into: result.storage.base, relu: true)
            return result
        }
        let y = normalizeWithStatistics(x, stats, weight: weight, bias: bias, name: "group_norm")
        return relu ? y.relu() : y
    }

    private static func normalizeWithStatistics(_ x: Tensor, _ stats: NormalizationStatistics, weight: Tensor, bias: Tensor, name: String)
        -> Tensor
    {
        let result = Tensor(uninitializedShape: x.shape)
        stats.normalize(x.storage.base, weight: weight.storage.base, bias: bias.storage.base, into: result.storage.base)
        guard recordsGradient(x, weight, bias) else { return result }
        let cx = x.detached(), cw = weight.detached()
        return result.recorded(name, inputs: [x, weight, bias], seedBatched: true) { g, needed in
            let seeds = g.rank > cx.rank ? g.shape[0] : 1
            let lead = Array(g.shape.prefix(g.rank - cx.rank))
            let (dx, dw, db) = stats.backward(
                input: cx.storage.base, gradOutput: g.storage.base, weight: cw.storage.base,
                seeds: seeds, needInput: needed[0], needParameters: needed[1] || needed[2])
            return [
                needed[0] ? dx?.reshaped(lead + cx.shape) : nil,
                needed[1] ? dw?.reshaped(lead + cw.shape) : nil,
                needed[2] ? db?.reshaped(lead + cw.shape) : nil,
            ]
        }
    }
}

/// Mean and inverse standard deviation of each normalization set, and the normalization kernels.
///
/// A set is (image, group) for group-norm and (channel) over all images for batch-norm.
private struct NormalizationStatistics: @unchecked Sendable {
    let rows, channels, groups, plane: Int
    let perChannel: Bool
    var mean: [Float]
    var variance: [Float]
    var inverseDeviation: [Float]

    init(_ x: Tensor, rows: Int, channels: Int, groups: Int, plane: Int, epsilon: Float, perChannel: Bool) {
        self.rows = rows
        self.channels = channels
        self.groups = groups
        self.plane = plane
        self.perChannel = perChannel
        let sets = perChannel ? channels : rows * groups
        var mean = [Float](repeating: 0, count: sets), variance = mean
        let px = x.storage.base
        let channelsPerGroup = channels / groups
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            variance.withUnsafeMutableBufferPointer { varianceBuffer in
                nonisolated(unsafe) let pm = meanBuffer.baseAddress!, pv = varianceBuffer.baseAddress!
                parallelFor(sets, costPerItem: x.count / Swift.max(sets, 1)) { range in
                    for set in range {
                        var total: Double = 0, squares: Double = 0, count = 0
                        Self.forEachSegment(
                            set: set, rows: rows, channels: channels, channelsPerGroup: channelsPerGroup, plane: plane,
                            perChannel: perChannel
                        ) { start, length in
                            let segment = px + start
                            let s = vectorSum(segment, length)
                            let segmentMean = s / Float(length)
                            let q = vectorSquaredDeviations(segment, length, mean: segmentMean)
                            // Chan's parallel combination keeps the variance accurate for large sets.
                            let n1 = Double(count), n2 = Double(length)
                            if count > 0 {
                                let delta = Double(segmentMean) - total / n1
                                squares += Double(q) + delta * delta * n1 * n2 / (n1 + n2)
                            } else {
                                squares = Double(q)
                            }
                            total += Double(s)
                            count += length
                        }
                        pm[set] = Float(total / Double(Swift.max(count, 1)))
                        pv[set] = Float(squares / Double(Swift.max(count, 1)))
                    }
                }
            }
        }
        self.mean = mean
        self.variance = variance
        self.inverseDeviation = variance.map { 1 / sqrtf($0 + epsilon) }
    }

    /// Calls `body(start, length)` for each contiguous run of elements in normalization set `set`.
    @inline(__always)
    static func forEachSegment(
        set: Int, rows: Int, channels: Int, channelsPerGroup: Int, plane: Int, perChannel: Bool, _ body: (Int, Int) -> Void
    ) {
        if perChannel {
            for n in 0..<rows { body((n * channels + set) * plane, plane) }
        } else {
            body(set * channelsPerGroup * plane, channelsPerGroup * plane)
        }
    }

    func setIndex(row: Int, channel: Int) -> Int {
        perChannel ? channel : row * groups + channel / (channels / groups)
    }

    func normalize(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
        relu: Bool = false
    ) {
        parallelFor(rows * channels, costPerItem: plane) { range in
            for nc in range {
                let c = nc % channels, set = setIndex(row: nc / channels, channel: c)
                let a = inverseDeviation[set] * weight[c]
                let b = bias[c] - mean[set] * a
                let src = x + nc * plane, dst = out + nc * plane
                if relu {
                    for i in 0..<plane { dst[i] = Swift.max(src[i] * a + b, 0) }
                } else {
                    for i in 0..<plane { dst[i] = src[i] * a + b }
                }
            }
        }
    }

    /// Gradients for `seeds` stacked cotangents of the output.
    func backward(
        input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        seeds: Int, needInput: Bool, needParameters: Bool
    ) -> (Tensor?, Tensor?, Tensor?) {
        let imageSize = rows * channels * plane
        // Per (seed, image, channel): Σ dy and Σ dy·x̂.
        let lines = seeds * rows * channels
        var sumDy = [Float](repeating: 0, count: lines), sumDyXhat = sumDy
        sumDy.withUnsafeMutableBufferPointer { sdBuffer in
            sumDyXhat.withUnsafeMutableBufferPointer { sxBuffer in
                nonisolated(unsafe) let sd = sdBuffer.baseAddress!, sx = sxBuffer.baseAddress!
                parallelFor(lines, costPerItem: plane) { range in
                    for line in range {
                        let nc = line % (rows * channels)
                        let set = setIndex(row: nc / channels, channel: nc % channels)
                        let mu = mean[set], inv = inverseDeviation[set]
                        let dy = gradOutput + line * plane, x = input + nc * plane
                        let (a, b) = vectorSumAndCenteredDot(dy, x, plane, mean: mu)
                        sd[line] = a
                        sx[line] = b * inv
                    }
                }
            }
        }
        var gradWeight: Tensor? = nil, gradBias: Tensor? = nil
        if needParameters {
            let dw = Tensor(zeros: [seeds, channels]), db = Tensor(zeros: [seeds, channels])
            for line in 0..<lines {
                let seed = line / (rows * channels), c = line % channels
                dw.storage.base[seed * channels + c] += sumDyXhat[line]
                db.storage.base[seed * channels + c] += sumDy[line]
            }
            gradWeight = dw
            gradBias = db
        }
        guard needInput else { return (nil, gradWeight, gradBias) }
        // Per (seed, set): mean over the set of dx̂ and of dx̂·x̂, where dx̂ = dy·w.
        let setsPerSeed = perChannel ? channels : rows * groups
        var meanD = [Float](repeating: 0, count: seeds * setsPerSeed), meanDX = meanD
        let setSize = Float(perChannel ? rows * plane : channels / groups * plane)
        for line in 0..<lines {
            let seed = line / (rows * channels), nc = line % (rows * channels), c = nc % channels
            let set = seed * setsPerSeed + setIndex(row: nc / channels, channel: c)
            meanD[set] += sumDy[line] * weight[c] / setSize
            meanDX[set] += sumDyXhat[line] * weight[c] / setSize
        }
        let dx = Tensor(uninitializedShape: [seeds * imageSize])
        let pdx = dx.storage.base
        parallelFor(lines, costPerItem: plane) { range in
            for line in range {
                let seed = line / (rows * channels), nc = line % (rows * channels), c = nc % channels
                let local = setIndex(row: nc / channels, channel: c), set = seed * setsPerSeed + local
                let mu = mean[local], inv = inverseDeviation[local], w = weight[c]
                let md = meanD[set], mdx = meanDX[set]
                let dy = gradOutput + line * plane, x = input + nc * plane, out = pdx + line * plane
                for i in 0..<plane {
                    let xhat = (x[i] - mu) * inv
                    out[i] = inv * (dy[i] * w - md - xhat * mdx)
                }
            }
        }
        return (dx, gradWeight, gradBias)
    }
}
