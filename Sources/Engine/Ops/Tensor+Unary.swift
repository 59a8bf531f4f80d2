#if canImport(Glibc)
    import Glibc
#endif

/// Elementwise unary ops and their gradients.
extension Tensor {
    /// Applies `function` elementwise; `derivative(x, y)` gives dy/dx from the input and the output.
    @inline(__always)
    package func unary(
        _ name: String, _ function: @escaping (Float) -> Float, derivative: @escaping (Float, Float) -> Float
    ) -> Tensor {
        unary(name, ClosureUnaryOperation(function: function, derivativeFunction: derivative))
    }

    /// Applies `op` elementwise, recording its derivative. Generic over the operation so that forward and backward
    /// loops are compiled for it (a closure would cost a call per element); the backward pass multiplies the incoming
    /// gradient by the derivative in the same loop.
    @inline(__always)
    package func unary<Op: UnaryElementOperation>(_ name: String, _ op: Op) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let pi = storage.base, po = result.storage.base
        parallelFor(count, costPerItem: 4) { range in
            for i in range { po[i] = op.apply(pi[i]) }
        }
        guard Tensor.recordsGradient(self) else { return result }
        let input = detached(), output = result.detached()
        return result.recorded(name, inputs: [self], seedBatched: true) { g, _ in
            // g is [lead..., shape]: the input and output repeat along the lead.
            let gradient = Tensor(uninitializedShape: g.shape)
            let pg = g.storage.base, pd = gradient.storage.base, px = input.storage.base, py = output.storage.base
            let n = input.count
            parallelFor(g.count, costPerItem: 2) { range in
                var i = range.lowerBound
                while i < range.upperBound {
                    let j = i % n, run = Swift.min(range.upperBound - i, n - j)
                    for k in 0..<run { pd[i + k] = pg[i + k] * op.derivative(px[j + k], py[j + k]) }
                    i += run
                }
            }
            return [gradient]
        }
    }

    public func relu() -> Tensor { unary("relu", ReLUOperation()) }

    public func sigmoid() -> Tensor { unary("sigmoid", SigmoidOperation()) }

    public func exp() -> Tensor { unary("exp", ExpOperation()) }

    public func log() -> Tensor { unary("log", LogOperation()) }

    public func sqrt() -> Tensor { unary("sqrt", SqrtOperation()) }

    public func abs() -> Tensor {
        unary("abs", { Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) })
    }

    public func squared() -> Tensor { unary("square", SquareOperation()) }

    /// Clamps into `[min, max]` (either bound optional). The gradient passes where `min <= x <= max`, as PyTorch.
    public func clamped(min lower: Float? = nil, max upper: Float? = nil) -> Tensor {
        let lo = lower ?? -.infinity, hi = upper ?? .infinity
        return unary("clamp", { x in Swift.min(Swift.max(x, lo), hi) }, derivative: { x, _ in x >= lo && x <= hi ? 1 : 0 })
    }
}

/// An elementwise function and its derivative, as a type so that kernels are specialized for it.
package protocol UnaryElementOperation {
    func apply(_ x: Float) -> Float
    /// dy/dx from the input x and the output y.
    func derivative(_ x: Float, _ y: Float) -> Float
}

package struct ReLUOperation: UnaryElementOperation {
    @inline(__always) package func apply(_ x: Float) -> Float { x > 0 ? x : 0 }
    @inline(__always) package func derivative(_ x: Float, _ y: Float) -> Float { x > 0 ? 1 : 0 }
}

package struct ClosureUnaryOperation: UnaryElementOperation {
    let function: (Float) -> Float
    let derivativeFunction: (Float, Float) -> Float
    @inline(__always) package func apply(_ x: Float) -> Float { function(x) }
    @inline(__always) package func derivative(_ x: Float, _ y: Float) -> Float { derivativeFunction(x, y) }
}

package struct SigmoidOperation: UnaryElementOperation {
    // Split by sign so that exp never overflows.
    @inline(__always) package func apply(_ x: Float) -> Float { x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)) }
    @inline(__always) package func derivative(_ x: Float, _ y: Float) -> Float { y * (1 - y) }
}

package struct ExpOperation: UnaryElementOperation {
    @inline(__always) package func apply(_ x: Float) -> Float { expf(x) }
    @inline(__always) package func derivative(_ x: Float, _ y: Float) -> Float { y }
}

package struct LogOperation: UnaryElementOperation {
    @inline(__always) package func apply(_ x: Float) -> Float { logf(x) }
    @inline(__always) package func derivative(_ x: Float, _ y: Float) -> Float { 1 / x }
}

package struct SqrtOperation: UnaryElementOperation {
    @inline(__always) package func apply(_ x: Float) -> Float { sqrtf(x) }
    @inline(__always) package func derivative(_ x: Float, _ y: Float) -> Float { 0.5 / y }
}

package struct SquareOperation: UnaryElementOperation {
    @inline(__always) package func apply(_ x: Float) -> Float { x * x }
    @inline(__always) package func derivative(_ x: Float, _ y: Float) -> Float { 2 * x }
}
