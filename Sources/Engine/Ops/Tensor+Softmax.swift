#if canImport(Glibc)
    import Glibc
#endif

/// Softmax and log-softmax along one axis.
extension Tensor {
    private func axisLayout(_ axis: Int) -> (outer: Int, extent: Int, inner: Int) {
        let axis = normalizedAxis(axis)
        return (shape.prefix(axis).reduce(1, *), shape[axis], shape.suffix(from: axis + 1).reduce(1, *))
    }

    private func softmaxKernel(_ axis: Int, logarithm: Bool) -> Tensor {
        let (outer, extent, inner) = axisLayout(axis)
        let result = Tensor(uninitializedShape: shape)
        let pi = storage.base, po = result.storage.base
        parallelFor(outer * inner, costPerItem: extent * 8) { range in
            for line in range {
                let o = line / inner, i = line % inner
                let base = o * extent * inner + i
                var maximum = -Float.infinity
                for e in 0..<extent { maximum = Swift.max(maximum, pi[base + e * inner]) }
                var total: Float = 0
                for e in 0..<extent { total += expf(pi[base + e * inner] - maximum) }
                if logarithm {
                    let shift = maximum + logf(total)
                    for e in 0..<extent { po[base + e * inner] = pi[base + e * inner] - shift }
                } else {
                    for e in 0..<extent { po[base + e * inner] = expf(pi[base + e * inner] - maximum) / total }
                }
            }
        }
        return result
    }

    public func softmax(alongAxis axis: Int = -1) -> Tensor {
        let result = softmaxKernel(axis, logarithm: false)
        guard Tensor.recordsGradient(self) else { return result }
        let y = result.detached(), fromEnd = normalizedAxis(axis) - rank
        return result.recorded("softmax", inputs: [self], seedBatched: true) { g, _ in
            let gy = g * y
            return [gy - y * gy.sum(alongAxes: [g.rank + fromEnd], keepingDimensions: true)]
        }
    }

    public func logSoftmax(alongAxis axis: Int = -1) -> Tensor {
        let result = softmaxKernel(axis, logarithm: true)
        guard Tensor.recordsGradient(self) else { return result }
        let y = result.detached(), fromEnd = normalizedAxis(axis) - rank
        return result.recorded("log_softmax", inputs: [self], seedBatched: true) { g, _ in
            let p = y.exp()
            return [g - p * g.sum(alongAxes: [g.rank + fromEnd], keepingDimensions: true)]
        }
    }
}
