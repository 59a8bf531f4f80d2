/// Broadcasting shape of two shapes (NumPy rules).
package func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    let paddedA = [Int](repeating: 1, count: rank - a.count) + a
    let paddedB = [Int](repeating: 1, count: rank - b.count) + b
    return zip(paddedA, paddedB).map { x, y in
        precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) do not broadcast")
        return x == 1 ? y : x
    }
}

/// Strides that read a contiguous tensor of `shape` as if broadcast to `target` (0 on broadcast axes).
package func broadcastStrides(of shape: [Int], to target: [Int]) -> [Int] {
    let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
    let strides = padded.contiguousStrides
    return zip(padded, strides).enumerated().map { axis, pair in
        pair.0 == 1 && target[axis] != 1 ? 0 : pair.1
    }
}

/// Visits a shape row by row (the last axis is the row), tracking an offset into each of two strided operands.
///
/// `body(offsetA, offsetB, rowLength, strideA, strideB, rowIndex)`; rows are visited in row-major order.
@inline(__always)
package func forEachRow(
    shape: [Int], stridesA: [Int], stridesB: [Int],
    _ body: (Int, Int, Int, Int, Int, Int) -> Void
) {
    let rows = shape.isEmpty ? 1 : shape.dropLast().reduce(1, *)
    forEachRow(shape: shape, stridesA: stridesA, stridesB: stridesB, rows: 0..<rows, body)
}

/// ``forEachRow(shape:stridesA:stridesB:_:)`` restricted to the rows in `rows`, for splitting a loop over threads.
@inline(__always)
package func forEachRow(
    shape: [Int], stridesA: [Int], stridesB: [Int], rows: Range<Int>,
    _ body: (Int, Int, Int, Int, Int, Int) -> Void
) {
    let rank = shape.count
    if rank == 0 {
        if rows.contains(0) { body(0, 0, 1, 0, 0, 0) }
        return
    }
    let rowLength = shape[rank - 1]
    if rowLength == 0 || rows.isEmpty { return }
    var index = [Int](repeating: 0, count: rank)
    var remainder = rows.lowerBound
    var offsetA = 0, offsetB = 0
    for axis in stride(from: rank - 2, through: 0, by: -1) {
        index[axis] = remainder % shape[axis]
        remainder /= shape[axis]
        offsetA += index[axis] * stridesA[axis]
        offsetB += index[axis] * stridesB[axis]
    }
    for row in rows {
        body(offsetA, offsetB, rowLength, stridesA[rank - 1], stridesB[rank - 1], row)
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            offsetA += stridesA[axis]
            offsetB += stridesB[axis]
            if index[axis] < shape[axis] { break }
            offsetA -= stridesA[axis] * shape[axis]
            offsetB -= stridesB[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}
