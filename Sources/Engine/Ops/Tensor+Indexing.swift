/// Indexing ops: gather, index-select, scatter-add and where.
extension Tensor {
    /// `torch.gather`: `out[..., i, ...] = self[..., index[..., i, ...], ...]` along `axis`.
    public func gathering(alongAxis axis: Int, indices: IndexTensor) -> Tensor {
        let axis = normalizedAxis(axis)
        precondition(indices.rank == rank, "gather index rank \(indices.rank) != \(rank)")
        for d in 0..<rank where d != axis {
            precondition(indices.shape[d] <= shape[d], "gather index shape \(indices.shape) exceeds \(shape)")
        }
        let result = Tensor(uninitializedShape: indices.shape)
        let inStrides = shape.contiguousStrides
        let pi = storage.base, po = result.storage.base
        let extent = shape[axis]
        forEachIndex(indices.shape) { flat, position in
            let index = indices.values[flat]
            precondition(index >= 0 && index < extent, "gather index \(index) out of range 0..<\(extent)")
            var offset = 0
            for d in 0..<position.count { offset += (d == axis ? index : position[d]) * inStrides[d] }
            po[flat] = pi[offset]
        }
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded("gather", inputs: [self]) { g, _ in
            [Tensor(zeros: inputShape).scatteringAdd(alongAxis: axis, indices: indices, source: g)]
        }
    }

    /// `torch.Tensor.scatter_add`: a copy of `self` with `source[..., i, ...]` added at `index[..., i, ...]`.
    public func scatteringAdd(alongAxis axis: Int, indices: IndexTensor, source: Tensor) -> Tensor {
        let axis = normalizedAxis(axis)
        precondition(indices.rank == rank && source.rank == rank, "scatter_add ranks differ")
        var result = detached()
        result.makeStorageUnique()
        let outStrides = shape.contiguousStrides, srcStrides = source.shape.contiguousStrides
        let po = result.storage.base, ps = source.storage.base
        let extent = shape[axis]
        forEachIndex(indices.shape) { flat, position in
            let index = indices.values[flat]
            precondition(index >= 0 && index < extent, "scatter_add index \(index) out of range 0..<\(extent)")
            var offset = 0, sourceOffset = 0
            for d in 0..<position.count {
                offset += (d == axis ? index : position[d]) * outStrides[d]
                sourceOffset += position[d] * srcStrides[d]
            }
            po[offset] += ps[sourceOffset]
        }
        guard Tensor.recordsGradient(self, source) else { return result }
        return result.recorded("scatter_add", inputs: [self, source]) { g, needed in
            [needed[0] ? g : nil, needed[1] ? g.gathering(alongAxis: axis, indices: indices) : nil]
        }
    }

    /// `torch.index_select`: the entries `indices` along `axis`.
    public func indexSelecting(alongAxis axis: Int, indices: [Int]) -> Tensor {
        let axis = normalizedAxis(axis)
        let outer = shape.prefix(axis).reduce(1, *), inner = shape.suffix(from: axis + 1).reduce(1, *)
        var outShape = shape
        outShape[axis] = indices.count
        let result = Tensor(uninitializedShape: outShape)
        let pi = storage.base, po = result.storage.base
        let extent = shape[axis]
        for index in indices { precondition(index >= 0 && index < extent, "index_select \(index) out of 0..<\(extent)") }
        for o in 0..<outer {
            for (k, index) in indices.enumerated() {
                (po + (o * indices.count + k) * inner).update(from: pi + (o * extent + index) * inner, count: inner)
            }
        }
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded("index_select", inputs: [self]) { g, _ in
            let gradient = Tensor(zeros: inputShape)
            let pg = g.storage.base, pd = gradient.storage.base
            for o in 0..<outer {
                for (k, index) in indices.enumerated() {
                    let dst = pd + (o * extent + index) * inner, src = pg + (o * indices.count + k) * inner
                    for j in 0..<inner { dst[j] += src[j] }
                }
            }
            return [gradient]
        }
    }

    /// `torch.where`: elements of `a` where `condition` is nonzero, else of `b` (all three broadcast).
    public static func selecting(where condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = broadcastShape(broadcastShape(condition.shape, a.shape), b.shape)
        let mask = condition.broadcast(to: shape), left = a.broadcast(to: shape), right = b.broadcast(to: shape)
        let pm = mask.storage.base, pa = left.storage.base, pb = right.storage.base
        let result = Tensor(shape: shape) { pm[$0] != 0 ? pa[$0] : pb[$0] }
        guard recordsGradient(a, b) else { return result }
        let (shapeA, shapeB) = (a.shape, b.shape)
        let keepA = Tensor(shape: shape) { pm[$0] != 0 ? 1 : 0 }
        let keepB = 1 - keepA
        return result.recorded("where", inputs: [a, b], seedBatched: true) { g, needed in
            let lead = Array(g.shape.prefix(g.rank - shape.count))
            return [
                needed[0] ? (g * keepA).unbroadcast(to: lead + shapeA) : nil,
                needed[1] ? (g * keepB).unbroadcast(to: lead + shapeB) : nil,
            ]
        }
    }
}

/// Visits every multi-index of `shape` in row-major order with its flat position.
package func forEachIndex(_ shape: [Int], _ body: (Int, [Int]) -> Void) {
    let total = shape.elementCount
    if total == 0 { return }
    var position = [Int](repeating: 0, count: shape.count)
    for flat in 0..<total {
        body(flat, position)
        var axis = shape.count - 1
        while axis >= 0 {
            position[axis] += 1
            if position[axis] < shape[axis] { break }
            position[axis] = 0
            axis -= 1
        }
    }
}
