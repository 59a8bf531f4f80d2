/// Sorting ops: sort, top-k and argmax along an axis.
extension Tensor {
    /// Values and their indices along `axis`, sorted; ties keep their original order (a stable sort).
    public func sorted(alongAxis axis: Int = -1, descending: Bool = false) -> (values: Tensor, indices: IndexTensor) {
        topK(size(axis), alongAxis: axis, largest: descending)
    }

    /// The `k` largest (or smallest) values along `axis`, in order, with their indices. Ties: lower index first.
    public func topK(_ k: Int, alongAxis axis: Int = -1, largest: Bool = true) -> (values: Tensor, indices: IndexTensor) {
        let axis = normalizedAxis(axis)
        let extent = shape[axis]
        precondition(k >= 0 && k <= extent, "top-\(k) of an axis of \(extent)")
        let outer = shape.prefix(axis).reduce(1, *), inner = shape.suffix(from: axis + 1).reduce(1, *)
        var outShape = shape
        outShape[axis] = k
        let values = Tensor(uninitializedShape: outShape)
        var indexValues = [Int](repeating: 0, count: outShape.elementCount)
        let pi = storage.base, po = values.storage.base
        var order = [Int](repeating: 0, count: extent)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * extent * inner + i
                for e in 0..<extent { order[e] = e }
                order.sort { lhs, rhs in
                    let x = pi[base + lhs * inner], y = pi[base + rhs * inner]
                    // NaN ranks above everything, as in PyTorch.
                    if x.isNaN != y.isNaN { return largest ? x.isNaN : y.isNaN }
                    if x != y { return largest ? x > y : x < y }
                    return lhs < rhs
                }
                for j in 0..<k {
                    let out = (o * k + j) * inner + i
                    po[out] = pi[base + order[j] * inner]
                    indexValues[out] = order[j]
                }
            }
        }
        let indices = IndexTensor(shape: outShape, values: indexValues)
        guard Tensor.recordsGradient(self) else { return (values, indices) }
        let inputShape = shape
        let recorded = values.recorded("topk", inputs: [self]) { g, _ in
            [Tensor(zeros: inputShape).scatteringAdd(alongAxis: axis, indices: indices, source: g)]
        }
        return (recorded, indices)
    }

    /// Index of the largest value along `axis` (first one at ties), with that axis removed.
    public func argmax(alongAxis axis: Int = -1) -> IndexTensor {
        let axis = normalizedAxis(axis)
        let extent = shape[axis]
        let outer = shape.prefix(axis).reduce(1, *), inner = shape.suffix(from: axis + 1).reduce(1, *)
        var result = [Int](repeating: 0, count: outer * inner)
        let pi = storage.base
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * extent * inner + i
                var best = 0
                var bestValue = pi[base]
                for e in 1..<Swift.max(extent, 1) where pi[base + e * inner] > bestValue || (pi[base + e * inner].isNaN && !bestValue.isNaN)
                {
                    best = e
                    bestValue = pi[base + e * inner]
                }
                result[o * inner + i] = best
            }
        }
        var outShape = shape
        outShape.remove(at: axis)
        return IndexTensor(shape: outShape, values: result)
    }
}
