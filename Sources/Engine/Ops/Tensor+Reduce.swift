/// Reductions over axes (sum, mean, max) and their gradients.
extension Tensor {
    /// Output shape and the strides that map an input position to its output position (0 on reduced axes).
    private func reductionLayout(_ axes: [Int]) -> (kept: [Int], strides: [Int]) {
        let reduced = Set(axes.map(normalizedAxis))
        let kept = shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        let keptStrides = kept.contiguousStrides
        let strides = (0..<rank).map { reduced.contains($0) ? 0 : keptStrides[$0] }
        return (kept, strides)
    }

    private func reducedShape(_ kept: [Int], _ axes: [Int], keepingDimensions: Bool) -> [Int] {
        if keepingDimensions { return kept }
        let reduced = Set(axes.map(normalizedAxis))
        return shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
    }

    /// Sum over `axes` (all axes when empty is not intended: pass them explicitly).
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let (kept, strides) = reductionLayout(axes)
        // Each thread sums its share of the rows into its own accumulator; the partial sums are added at the end.
        let keptCount = kept.elementCount
        let rows = shape.isEmpty ? 1 : shape.dropLast().reduce(1, *)
        let parts = count >= 65_536 ? min(ComputeThreads.count, Swift.max(rows, 1)) : 1
        var partials = [Double](repeating: 0, count: keptCount * parts)
        let pi = storage.base
        let inStrides = shape.contiguousStrides
        partials.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let base = buffer.baseAddress!
            parallelFor(parts, costPerItem: 1 << 20) { range in
                for part in range {
                    let out = base + part * keptCount
                    let share = (rows * part / parts)..<(rows * (part + 1) / parts)
                    forEachRow(shape: shape, stridesA: inStrides, stridesB: strides, rows: share) { offIn, offOut, length, _, incOut, _ in
                        if incOut == 0 {
                            var total: Double = 0
                            for j in 0..<length { total += Double(pi[offIn + j]) }
                            out[offOut] += total
                        } else {
                            for j in 0..<length { out[offOut + j] += Double(pi[offIn + j]) }
                        }
                    }
                }
            }
        }
        var sums = Array(partials.prefix(keptCount))
        for part in 1..<Swift.max(parts, 1) {
            for i in 0..<keptCount { sums[i] += partials[part * keptCount + i] }
        }
        let outShape = reducedShape(kept, axes, keepingDimensions: keepingDimensions)
        let result = Tensor(shape: outShape, generator: { Float(sums[$0]) })
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded("sum", inputs: [self], seedBatched: true) { g, _ in
            let lead = Array(g.shape.prefix(g.rank - outShape.count))
            return [g.reshaped(lead + kept).broadcast(to: lead + inputShape)]
        }
    }

    /// Sum of all elements, as a scalar.
    public func sum() -> Tensor { sum(alongAxes: Array(0..<rank)) }

    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let n = axes.map { size($0) }.reduce(1, *)
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) / Float(Swift.max(n, 1))
    }

    public func mean() -> Tensor { mean(alongAxes: Array(0..<rank)) }

    /// Maximum over `axes`; ties share the gradient evenly, as PyTorch's `amax`.
    public func max(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let (kept, strides) = reductionLayout(axes)
        let maxima = Tensor(repeating: -.infinity, shape: kept)
        let pi = storage.base, po = maxima.storage.base
        forEachRow(shape: shape, stridesA: shape.contiguousStrides, stridesB: strides) { offIn, offOut, length, _, incOut, _ in
            for j in 0..<length {
                let v = pi[offIn + j]
                let o = offOut + j * incOut
                if v > po[o] || v.isNaN { po[o] = v }
            }
        }
        let outShape = reducedShape(kept, axes, keepingDimensions: keepingDimensions)
        let result = maxima.reshaped(outShape)
        guard Tensor.recordsGradient(self) else { return result }
        let input = detached()
        return result.recorded("amax", inputs: [self], seedBatched: true) { g, _ in
            let lead = Array(g.shape.prefix(g.rank - outShape.count))
            let isMax = Tensor.binaryKernel(input, maxima) { x, m in x == m ? 1 : 0 }
            let ties = isMax.sum(alongAxes: axes, keepingDimensions: true)
            return [g.reshaped(lead + kept) * isMax / ties]
        }
    }

    /// Materializes this tensor broadcast to `target` (no gradient recording: used inside pullbacks).
    package func broadcast(to target: [Int]) -> Tensor {
        if shape == target { return detached() }
        let result = Tensor(uninitializedShape: target)
        let pi = storage.base, po = result.storage.base
        let strides = broadcastStrides(of: shape, to: target)
        forEachRow(shape: target, stridesA: strides, stridesB: strides) { offIn, _, length, inc, _, row in
            let out = po + row * length
            if inc == 0 {
                out.update(repeating: pi[offIn], count: length)
            } else {
                out.update(from: pi + offIn, count: length)
            }
        }
        return result
    }

    /// This tensor broadcast to `target`, differentiably.
    public func expanded(to target: [Int]) -> Tensor {
        let result = broadcast(to: target)
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded("expand", inputs: [self], seedBatched: true) { g, _ in
            let lead = Array(g.shape.prefix(g.rank - target.count))
            return [g.unbroadcast(to: lead + inputShape)]
        }
    }
}
