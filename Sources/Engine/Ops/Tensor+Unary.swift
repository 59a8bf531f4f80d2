#if canImport(Glibc)
    import Glibc
#endif

/// Elementwise unary ops and their gradients.
extension Tensor {
    /// Applies `function` elementwise; `derivative(x, y)` gives dy/dx from the input and the output.
    @inline(__always)
    package func unary(
        _ name: String, _ function: (Float) -> Float, derivative: @escaping (Float, Float) -> Float
    ) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let pi = storage.base, po = result.storage.base
        parallelFor(count, costPerItem: 4) { range in
            for i in range { po[i] = function(pi[i]) }
        }
        guard Tensor.recordsGradient(self) else { return result }
        let input = detached(), output = result.detached()
        return result.recorded(name, inputs: [self], seedBatched: true) { g, _ in
            [g * Tensor.binaryKernel(input, output, derivative)]
        }
    }

    public func relu() -> Tensor {
        unary("relu", { $0 > 0 ? $0 : 0 }, derivative: { x, _ in x > 0 ? 1 : 0 })
    }

    public func sigmoid() -> Tensor {
        unary(
            "sigmoid",
            { x in
                // Split by sign so that exp never overflows.
                x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x))
            }, derivative: { _, y in y * (1 - y) })
    }

    public func exp() -> Tensor {
        unary("exp", { expf($0) }, derivative: { _, y in y })
    }

    public func log() -> Tensor {
        unary("log", { logf($0) }, derivative: { x, _ in 1 / x })
    }

    public func sqrt() -> Tensor {
        unary("sqrt", { sqrtf($0) }, derivative: { _, y in 0.5 / y })
    }

    public func abs() -> Tensor {
        unary("abs", { Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) })
    }

    public func squared() -> Tensor {
        unary("square", { $0 * $0 }, derivative: { x, _ in 2 * x })
    }

    /// Clamps into `[min, max]` (either bound optional). The gradient passes where `min <= x <= max`, as PyTorch.
    public func clamped(min lower: Float? = nil, max upper: Float? = nil) -> Tensor {
        let lo = lower ?? -.infinity, hi = upper ?? .infinity
        return unary("clamp", { x in Swift.min(Swift.max(x, lo), hi) }, derivative: { x, _ in x >= lo && x <= hi ? 1 : 0 })
    }
}
