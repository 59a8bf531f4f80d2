/// Elementwise binary ops with NumPy/PyTorch broadcasting, and their gradients.
extension Tensor {
    /// `op` applied elementwise with broadcasting. Generic over the operation so that each one is compiled into its
    /// own loops (a closure would cost a call per element).
    @inline(__always)
    static func binaryKernel<Op: BinaryElementOperation>(_ a: Tensor, _ b: Tensor, _ op: Op) -> Tensor {
        if a.shape == b.shape {
            let result = Tensor(uninitializedShape: a.shape)
            let pa = a.storage.base, pb = b.storage.base, po = result.storage.base
            parallelFor(a.count, costPerItem: 1) { range in
                for i in range { po[i] = op.apply(pa[i], pb[i]) }
            }
            return result
        }
        let shape = broadcastShape(a.shape, b.shape)
        let result = Tensor(uninitializedShape: shape)
        let pa = a.storage.base, pb = b.storage.base, po = result.storage.base
        if b.count == 1 {
            let value = pb[0]
            parallelFor(result.count) { range in for i in range { po[i] = op.apply(pa[i], value) } }
            return result
        }
        if a.count == 1 {
            let value = pa[0]
            parallelFor(result.count) { range in for i in range { po[i] = op.apply(value, pb[i]) } }
            return result
        }
        let stridesA = broadcastStrides(of: a.shape, to: shape)
        let stridesB = broadcastStrides(of: b.shape, to: shape)
        forEachRow(shape: shape, stridesA: stridesA, stridesB: stridesB) { offA, offB, length, incA, incB, row in
            let out = po + row * length
            if incA == 1 && incB == 1 {
                for j in 0..<length { out[j] = op.apply(pa[offA + j], pb[offB + j]) }
            } else if incA == 1 && incB == 0 {
                let value = pb[offB]
                for j in 0..<length { out[j] = op.apply(pa[offA + j], value) }
            } else if incA == 0 && incB == 1 {
                let value = pa[offA]
                for j in 0..<length { out[j] = op.apply(value, pb[offB + j]) }
            } else {
                for j in 0..<length { out[j] = op.apply(pa[offA + j * incA], pb[offB + j * incB]) }
            }
        }
        return result
    }

    /// `op` applied elementwise with broadcasting, for operations that are closures.
    static func binaryKernel(_ a: Tensor, _ b: Tensor, _ op: @escaping (Float, Float) -> Float) -> Tensor {
        binaryKernel(a, b, ClosureElementOperation(function: op))
    }

    /// Sums `self` (shape `lead + broadcast shape`) down to `lead + target`, undoing broadcasting in a pullback.
    package func unbroadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let padded = [Int](repeating: 1, count: rank - target.count) + target
        let axes = (0..<rank).filter { padded[$0] == 1 && shape[$0] != 1 }
        return sum(alongAxes: axes, keepingDimensions: true).reshaped(target)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let result = binaryKernel(a, b, AddElements())
        guard recordsGradient(a, b) else { return result }
        let (shapeA, shapeB) = (a.shape, b.shape)
        return result.recorded("add", inputs: [a, b], seedBatched: true) { g, needed in
            let lead = Array(g.shape.prefix(g.rank - result.rank))
            return [
                needed[0] ? g.unbroadcast(to: lead + shapeA) : nil,
                needed[1] ? g.unbroadcast(to: lead + shapeB) : nil,
            ]
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let result = binaryKernel(a, b, SubtractElements())
        guard recordsGradient(a, b) else { return result }
        let (shapeA, shapeB) = (a.shape, b.shape)
        return result.recorded("sub", inputs: [a, b], seedBatched: true) { g, needed in
            let lead = Array(g.shape.prefix(g.rank - result.rank))
            return [
                needed[0] ? g.unbroadcast(to: lead + shapeA) : nil,
                needed[1] ? (-g).unbroadcast(to: lead + shapeB) : nil,
            ]
        }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let result = binaryKernel(a, b, MultiplyElements())
        guard recordsGradient(a, b) else { return result }
        let (ca, cb) = (a.detached(), b.detached())
        return result.recorded("mul", inputs: [a, b], seedBatched: true) { g, needed in
            let lead = Array(g.shape.prefix(g.rank - result.rank))
            return [
                needed[0] ? (g * cb).unbroadcast(to: lead + ca.shape) : nil,
                needed[1] ? (g * ca).unbroadcast(to: lead + cb.shape) : nil,
            ]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let result = binaryKernel(a, b, DivideElements())
        guard recordsGradient(a, b) else { return result }
        let (ca, cb) = (a.detached(), b.detached())
        return result.recorded("div", inputs: [a, b], seedBatched: true) { g, needed in
            let lead = Array(g.shape.prefix(g.rank - result.rank))
            return [
                needed[0] ? (g / cb).unbroadcast(to: lead + ca.shape) : nil,
                needed[1] ? (-(g * ca) / (cb * cb)).unbroadcast(to: lead + cb.shape) : nil,
            ]
        }
    }

    /// Elementwise maximum; at ties the gradient is split evenly, as PyTorch's `maximum`.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        extremum(a, b, name: "maximum", pick: { $0 > $1 })
    }

    /// Elementwise minimum; at ties the gradient is split evenly, as PyTorch's `minimum`.
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        extremum(a, b, name: "minimum", pick: { $0 < $1 })
    }

    private static func extremum(_ a: Tensor, _ b: Tensor, name: String, pick: @escaping (Float, Float) -> Bool) -> Tensor {
        let result = binaryKernel(a, b) { x, y in
            if x.isNaN || y.isNaN { return .nan }
            return pick(x, y) || x == y ? x : y
        }
        guard recordsGradient(a, b) else { return result }
        let (ca, cb) = (a.detached(), b.detached())
        return result.recorded(name, inputs: [a, b], seedBatched: true) { g, needed in
            let lead = Array(g.shape.prefix(g.rank - result.rank))
            let weightA = binaryKernel(ca, cb) { x, y in x == y ? 0.5 : (pick(x, y) ? 1 : 0) }
            let weightB = binaryKernel(ca, cb) { x, y in x == y ? 0.5 : (pick(x, y) ? 0 : 1) }
            return [
                needed[0] ? (g * weightA).unbroadcast(to: lead + ca.shape) : nil,
                needed[1] ? (g * weightB).unbroadcast(to: lead + cb.shape) : nil,
            ]
        }
    }

    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(b) }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(b) }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(b) }
    public static func / (a: Tensor, b: Float) -> Tensor { a / Tensor(b) }
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(a) + b }
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(a) - b }
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(a) * b }
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(a) / b }

    public static prefix func - (a: Tensor) -> Tensor {
        a.unary("neg", { -$0 }, derivative: { _, _ in -1 })
    }

    /// Adds `other` into this tensor's storage (no graph recording); shapes must match.
    package mutating func addInPlace(_ other: Tensor) {
        precondition(shape == other.shape, "addInPlace \(shape) += \(other.shape)")
        makeStorageUnique()
        let po = storage.base, pi = other.storage.base
        parallelFor(count) { range in for i in range { po[i] += pi[i] } }
    }
}

/// An elementwise operation of two values, as a type so that kernels are specialized for it.
package protocol BinaryElementOperation {
    func apply(_ a: Float, _ b: Float) -> Float
}

package struct AddElements: BinaryElementOperation {
    @inline(__always) package func apply(_ a: Float, _ b: Float) -> Float { a + b }
}

package struct SubtractElements: BinaryElementOperation {
    @inline(__always) package func apply(_ a: Float, _ b: Float) -> Float { a - b }
}

package struct MultiplyElements: BinaryElementOperation {
    @inline(__always) package func apply(_ a: Float, _ b: Float) -> Float { a * b }
}

package struct DivideElements: BinaryElementOperation {
    @inline(__always) package func apply(_ a: Float, _ b: Float) -> Float { a / b }
}

package struct ClosureElementOperation: BinaryElementOperation {
    let function: (Float, Float) -> Float
    @inline(__always) package func apply(_ a: Float, _ b: Float) -> Float { function(a, b) }
}
