/// Resizing of the last two axes with PyTorch's `interpolate` semantics.
extension Tensor {
    public enum InterpolationMode: Sendable {
        case nearest
        case bilinear(alignCorners: Bool)
    }

    /// `torch.nn.functional.interpolate(size: (height, width))` for `nearest` and `bilinear`.
    public func interpolated(size: (Int, Int), mode: InterpolationMode) -> Tensor {
        let h = shape[rank - 2], w = shape[rank - 1]
        let (oh, ow) = size
        let rows = InterpolationTaps(inSize: h, outSize: oh, mode: mode)
        let cols = InterpolationTaps(inSize: w, outSize: ow, mode: mode)
        let outShape = Array(shape.dropLast(2)) + [oh, ow]
        let result = Tensor(uninitializedShape: outShape)
        let pi = storage.base, po = result.storage.base
        let planes = count / Swift.max(h * w, 1)
        parallelFor(planes, costPerItem: oh * ow * 4) { range in
            for plane in range {
                let src = pi + plane * h * w, dst = po + plane * oh * ow
                for oy in 0..<oh {
                    let y0 = rows.low[oy], y1 = rows.high[oy], wy0 = rows.lowWeight[oy], wy1 = rows.highWeight[oy]
                    for ox in 0..<ow {
                        let x0 = cols.low[ox], x1 = cols.high[ox], wx0 = cols.lowWeight[ox], wx1 = cols.highWeight[ox]
                        dst[oy * ow + ox] =
                            wy0 * (wx0 * src[y0 * w + x0] + wx1 * src[y0 * w + x1])
                            + wy1 * (wx0 * src[y1 * w + x0] + wx1 * src[y1 * w + x1])
                    }
                }
            }
        }
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded("interpolate", inputs: [self], seedBatched: true) { g, _ in
            let lead = Array(g.shape.prefix(g.rank - outShape.count))
            let gradient = Tensor(zeros: lead + inputShape)
            let pg = g.storage.base, pd = gradient.storage.base
            parallelFor(g.count / Swift.max(oh * ow, 1), costPerItem: oh * ow * 4) { range in
                for plane in range {
                    let src = pg + plane * oh * ow, dst = pd + plane * h * w
                    for oy in 0..<oh {
                        let y0 = rows.low[oy], y1 = rows.high[oy], wy0 = rows.lowWeight[oy], wy1 = rows.highWeight[oy]
                        for ox in 0..<ow {
                            let x0 = cols.low[ox], x1 = cols.high[ox], wx0 = cols.lowWeight[ox], wx1 = cols.highWeight[ox]
                            let v = src[oy * ow + ox]
                            dst[y0 * w + x0] += wy0 * wx0 * v
                            dst[y0 * w + x1] += wy0 * wx1 * v
                            dst[y1 * w + x0] += wy1 * wx0 * v
                            dst[y1 * w + x1] += wy1 * wx1 * v
                        }
                    }
                }
            }
            return [gradient]
        }
    }
}

/// For each output position along one axis: the two source positions and their weights, as
/// ``Tensor/interpolated(size:mode:)`` uses them (for resizing that only needs part of the output).
public struct InterpolationTaps: Sendable {
    public var low: [Int], high: [Int], lowWeight: [Float], highWeight: [Float]

    public init(inSize: Int, outSize: Int, mode: Tensor.InterpolationMode) {
        low = []; high = []; lowWeight = []; highWeight = []
        switch mode {
        case .nearest:
            // PyTorch: min(floor(dst * (in / out)), in - 1), computed in float.
            let scale = Float(inSize) / Float(outSize)
            for dst in 0..<outSize {
                let src = Swift.min(Int((Float(dst) * scale).rounded(.down)), inSize - 1)
                low.append(src); high.append(src); lowWeight.append(1); highWeight.append(0)
            }
        case .bilinear(let alignCorners):
            let scale: Float =
                alignCorners
                ? (outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0)
                : Float(inSize) / Float(outSize)
            for dst in 0..<outSize {
                var src = alignCorners ? scale * Float(dst) : scale * (Float(dst) + 0.5) - 0.5
                if !alignCorners && src < 0 { src = 0 }
                let i0 = Int(src)
                let i1 = i0 + (i0 < inSize - 1 ? 1 : 0)
                let lambda = src - Float(i0)
                low.append(i0); high.append(i1); lowWeight.append(1 - lambda); highWeight.append(lambda)
            }
        }
    }
}
