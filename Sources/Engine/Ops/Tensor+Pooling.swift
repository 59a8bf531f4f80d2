/// Pooling over the last two axes of [N, C, H, W] tensors: max, average, adaptive average.
extension Tensor {
    private var planeCount: Int { count / Swift.max(shape[rank - 2] * shape[rank - 1], 1) }

    /// `torch.nn.functional.max_pool2d` (dilation 1, floor mode). Padding counts as -infinity.
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        let stride = stride ?? kernel
        let h = shape[rank - 2], w = shape[rank - 1]
        let oh = (h + 2 * padding.0 - kernel.0) / stride.0 + 1, ow = (w + 2 * padding.1 - kernel.1) / stride.1 + 1
        let outShape = Array(shape.dropLast(2)) + [oh, ow]
        let result = Tensor(uninitializedShape: outShape)
        var argmax = [Int32](repeating: 0, count: result.count)
        let pi = storage.base, po = result.storage.base
        argmax.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let pa = buffer.baseAddress!
            parallelFor(planeCount, costPerItem: oh * ow * kernel.0 * kernel.1) { range in
                for plane in range {
                    let src = pi + plane * h * w
                    for oy in 0..<oh {
                        let y0 = oy * stride.0 - padding.0
                        let rowsInside = y0 >= 0 && y0 + kernel.0 <= h
                        for ox in 0..<ow {
                            let x0 = ox * stride.1 - padding.1
                            var best = -Float.infinity, bestIndex = -1
                            if rowsInside && x0 >= 0 && x0 + kernel.1 <= w {
                                // Interior windows: no bounds checks. NaN propagates as in PyTorch.
                                best = src[y0 * w + x0]
                                bestIndex = y0 * w + x0
                                for ky in 0..<kernel.0 {
                                    let row = (y0 + ky) * w + x0
                                    for kx in 0..<kernel.1 {
                                        let v = src[row + kx]
                                        if v > best || v.isNaN { best = v; bestIndex = row + kx }
                                    }
                                }
                            } else {
                                for ky in 0..<kernel.0 {
                                    let iy = y0 + ky
                                    if iy < 0 || iy >= h { continue }
                                    for kx in 0..<kernel.1 {
                                        let ix = x0 + kx
                                        if ix < 0 || ix >= w { continue }
                                        let v = src[iy * w + ix]
                                        if v > best || v.isNaN || bestIndex < 0 { best = v; bestIndex = iy * w + ix }
                                    }
                                }
                            }
                            let o = (plane * oh + oy) * ow + ox
                            po[o] = best
                            pa[o] = Int32(bestIndex)
                        }
                    }
                }
            }
        }
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        let planeIn = h * w, planeOut = oh * ow
        return result.recorded("max_pool2d", inputs: [self], seedBatched: true) { g, _ in
            let lead = Array(g.shape.prefix(g.rank - outShape.count))
            let gradient = Tensor(zeros: lead + inputShape)
            let pg = g.storage.base, pd = gradient.storage.base
            let planes = g.count / planeOut, perSeed = argmax.count / planeOut
            for plane in 0..<planes {
                let local = plane % perSeed
                for j in 0..<planeOut {
                    let index = Int(argmax[local * planeOut + j])
                    if index >= 0 { pd[plane * planeIn + index] += pg[plane * planeOut + j] }
                }
            }
            return [gradient]
        }
    }

    /// `torch.nn.functional.avg_pool2d` (floor mode, padding counted in the divisor).
    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        let stride = stride ?? kernel
        let h = shape[rank - 2], w = shape[rank - 1]
        let oh = (h + 2 * padding.0 - kernel.0) / stride.0 + 1, ow = (w + 2 * padding.1 - kernel.1) / stride.1 + 1
        let windows = (0..<oh).flatMap { oy in
            (0..<ow).map { ox in
                PoolWindow(
                    y0: oy * stride.0 - padding.0, y1: oy * stride.0 - padding.0 + kernel.0,
                    x0: ox * stride.1 - padding.1, x1: ox * stride.1 - padding.1 + kernel.1,
                    divisor: Float(kernel.0 * kernel.1), height: h, width: w)
            }
        }
        return pooled(windows, outHeight: oh, outWidth: ow, name: "avg_pool2d")
    }

    /// `torch.nn.functional.adaptive_avg_pool2d`.
    public func adaptiveAvgPool2d(outputSize: (Int, Int)) -> Tensor {
        let h = shape[rank - 2], w = shape[rank - 1]
        let (oh, ow) = outputSize
        let windows = (0..<oh).flatMap { oy in
            (0..<ow).map { ox in
                let y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh
                let x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow
                return PoolWindow(y0: y0, y1: y1, x0: x0, x1: x1, divisor: Float((y1 - y0) * (x1 - x0)), height: h, width: w)
            }
        }
        return pooled(windows, outHeight: oh, outWidth: ow, name: "adaptive_avg_pool2d")
    }

    private func pooled(_ windows: [PoolWindow], outHeight oh: Int, outWidth ow: Int, name: String) -> Tensor {
        let h = shape[rank - 2], w = shape[rank - 1]
        let outShape = Array(shape.dropLast(2)) + [oh, ow]
        let result = Tensor(uninitializedShape: outShape)
        let pi = storage.base, po = result.storage.base
        parallelFor(planeCount, costPerItem: count / Swift.max(planeCount, 1)) { range in
            for plane in range {
                let src = pi + plane * h * w
                for (j, window) in windows.enumerated() {
                    var total: Float = 0
                    for y in window.clippedY { for x in window.clippedX { total += src[y * w + x] } }
                    po[plane * oh * ow + j] = total / window.divisor
                }
            }
        }
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded(name, inputs: [self], seedBatched: true) { g, _ in
            let lead = Array(g.shape.prefix(g.rank - outShape.count))
            let gradient = Tensor(zeros: lead + inputShape)
            let pg = g.storage.base, pd = gradient.storage.base
            for plane in 0..<(g.count / (oh * ow)) {
                let dst = pd + plane * h * w
                for (j, window) in windows.enumerated() {
                    let value = pg[plane * oh * ow + j] / window.divisor
                    for y in window.clippedY { for x in window.clippedX { dst[y * w + x] += value } }
                }
            }
            return [gradient]
        }
    }
}

private struct PoolWindow {
    let y0, y1, x0, x1: Int
    let divisor: Float
    let height, width: Int
    var clippedY: Range<Int> { Swift.max(y0, 0)..<Swift.min(y1, height) }
    var clippedX: Range<Int> { Swift.max(x0, 0)..<Swift.min(x1, width) }
}
