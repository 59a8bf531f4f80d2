/// Shape ops: reshape, permute, concatenate, split, slice, pad, stack.
extension Tensor {
    /// The same values under another shape; one dimension may be -1 (inferred). Shares storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let inferred = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            target[inferred] = count / known
        }
        precondition(target.elementCount == count, "cannot reshape \(shape) to \(newShape)")
        var result = Tensor(shape: target, storage: storage)
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        result = result.recorded("reshape", inputs: [self], seedBatched: true) { g, _ in
            let lead = Array(g.shape.prefix(g.rank - target.count))
            return [g.reshaped(lead + inputShape)]
        }
        return result
    }

    /// Reorders axes: result axis `i` is input axis `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.count == rank && Set(order) == Set(0..<rank), "bad permutation \(order) for rank \(rank)")
        let outShape = order.map { shape[$0] }
        let inStrides = shape.contiguousStrides
        let readStrides = order.map { inStrides[$0] }
        let result = Tensor(uninitializedShape: outShape)
        let pi = storage.base, po = result.storage.base
        forEachRow(shape: outShape, stridesA: readStrides, stridesB: readStrides) { offIn, _, length, inc, _, row in
            let out = po + row * length
            for j in 0..<length { out[j] = pi[offIn + j * inc] }
        }
        guard Tensor.recordsGradient(self) else { return result }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, axis) in order.enumerated() { inverse[axis] = i }
        return result.recorded("permute", inputs: [self], seedBatched: true) { g, _ in
            let lead = g.rank - outShape.count
            return [g.permuted(Array(0..<lead) + inverse.map { $0 + lead })]
        }
    }

    /// Swaps the last two axes.
    public func transposed() -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(rank - 1, rank - 2)
        return permuted(order)
    }

    /// Concatenation along `axis`.
    public static func concatenated(_ parts: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        precondition(!parts.isEmpty, "concatenating no tensors")
        let first = parts[0]
        let axis = first.normalizedAxis(axis)
        for part in parts {
            precondition(part.rank == first.rank, "concat ranks differ")
            for d in 0..<first.rank where d != axis {
                precondition(part.shape[d] == first.shape[d], "concat shapes \(first.shape) and \(part.shape)")
            }
        }
        var outShape = first.shape
        outShape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let result = Tensor(uninitializedShape: outShape)
        let outer = first.shape.prefix(axis).reduce(1, *)
        let inner = first.shape.suffix(from: axis + 1).reduce(1, *)
        let outRow = outShape[axis] * inner
        var offset = 0
        for part in parts {
            let partRow = part.shape[axis] * inner
            let pi = part.storage.base, po = result.storage.base
            for o in 0..<outer {
                (po + o * outRow + offset).update(from: pi + o * partRow, count: partRow)
            }
            offset += partRow
        }
        guard recordsGradient(parts) else { return result }
        let sizes = parts.map { $0.shape[axis] }
        return result.recorded("cat", inputs: parts, seedBatched: true) { g, needed in
            let lead = g.rank - outShape.count
            return g.split(sizes: sizes, alongAxis: axis + lead).enumerated().map { needed[$0.offset] ? $0.element : nil }
        }
    }

    /// Stacks equally shaped tensors along a new leading axis.
    public static func stacked(_ parts: [Tensor]) -> Tensor {
        concatenated(parts.map { $0.reshaped([1] + $0.shape) }, alongAxis: 0)
    }

    /// Splits along `axis` into consecutive pieces of the given sizes.
    public func split(sizes: [Int], alongAxis axis: Int) -> [Tensor] {
        let axis = normalizedAxis(axis)
        precondition(sizes.reduce(0, +) == shape[axis], "split sizes \(sizes) for extent \(shape[axis])")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return sliced(alongAxis: axis, start: start, end: start + size)
        }
    }

    /// Elements `start..<end` (every `step`-th) along `axis`.
    public func sliced(alongAxis axis: Int, start: Int, end: Int, step: Int = 1) -> Tensor {
        let axis = normalizedAxis(axis)
        precondition(step > 0 && start >= 0 && end <= shape[axis] && start <= end, "slice \(start)..<\(end) of \(shape[axis])")
        var outShape = shape
        outShape[axis] = (end - start + step - 1) / step
        let outer = shape.prefix(axis).reduce(1, *)
        let inner = shape.suffix(from: axis + 1).reduce(1, *)
        let result = Tensor(uninitializedShape: outShape)
        let pi = storage.base, po = result.storage.base
        let extent = shape[axis], outExtent = outShape[axis]
        for o in 0..<outer {
            for (k, index) in stride(from: start, to: end, by: step).enumerated() {
                (po + (o * outExtent + k) * inner).update(from: pi + (o * extent + index) * inner, count: inner)
            }
        }
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded("slice", inputs: [self], seedBatched: true) { g, _ in
            let lead = g.rank - outShape.count
            let leadShape = Array(g.shape.prefix(lead))
            var gradient = Tensor(zeros: leadShape + inputShape)
            let gOuter = leadShape.reduce(1, *) * outer
            let pg = g.storage.base, pd = gradient.storage.base
            for o in 0..<gOuter {
                for (k, index) in stride(from: start, to: end, by: step).enumerated() {
                    (pd + (o * extent + index) * inner).update(from: pg + (o * outExtent + k) * inner, count: inner)
                }
            }
            gradient.node = nil
            return [gradient]
        }
    }

    /// The sub-tensor at `index` of `axis`, with that axis removed.
    public func selecting(index: Int, alongAxis axis: Int) -> Tensor {
        let axis = normalizedAxis(axis)
        var outShape = shape
        outShape.remove(at: axis)
        return sliced(alongAxis: axis, start: index, end: index + 1).reshaped(outShape)
    }

    /// Constant padding, as `torch.nn.functional.pad`: `padding` holds (before, after) pairs starting from the
    /// last axis. Negative amounts crop.
    public func padded(_ padding: [(Int, Int)], value: Float = 0) -> Tensor {
        precondition(padding.count <= rank, "padding \(padding.count) axes of a rank-\(rank) tensor")
        var before = [Int](repeating: 0, count: rank), after = before
        for (i, pair) in padding.enumerated() {
            before[rank - 1 - i] = pair.0
            after[rank - 1 - i] = pair.1
        }
        let outShape = (0..<rank).map { shape[$0] + before[$0] + after[$0] }
        precondition(outShape.allSatisfy { $0 >= 0 }, "padding makes a negative extent")
        let result = Tensor(repeating: value, shape: outShape)
        copyRegion(from: self, to: result, offsets: before)
        guard Tensor.recordsGradient(self) else { return result }
        let inputShape = shape
        return result.recorded("pad", inputs: [self]) { g, _ in
            let gradient = Tensor(zeros: inputShape)
            copyRegion(from: g, to: gradient, offsets: before.map { -$0 })
            return [gradient]
        }
    }
}

/// Copies the overlap of `source` placed at `offsets` inside `destination` (offsets may be negative).
private func copyRegion(from source: Tensor, to destination: Tensor, offsets: [Int]) {
    let rank = source.rank
    var lo = [Int](repeating: 0, count: rank), hi = lo
    for d in 0..<rank {
        lo[d] = max(0, -offsets[d])
        hi[d] = min(source.shape[d], destination.shape[d] - offsets[d])
        if hi[d] <= lo[d] { return }
    }
    let region = (0..<rank).map { hi[$0] - lo[$0] }
    let srcStrides = source.shape.contiguousStrides, dstStrides = destination.shape.contiguousStrides
    let srcStart = (0..<rank).map { lo[$0] * srcStrides[$0] }.reduce(0, +)
    let dstStart = (0..<rank).map { (lo[$0] + offsets[$0]) * dstStrides[$0] }.reduce(0, +)
    let ps = source.storage.base + srcStart, pd = destination.storage.base + dstStart
    forEachRow(shape: region, stridesA: srcStrides, stridesB: dstStrides) { offS, offD, length, _, _, _ in
        (pd + offD).update(from: ps + offS, count: length)
    }
}
