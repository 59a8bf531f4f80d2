/// Matrix products: `matmul` (2-D and batched 3-D) and `linear`, on cblas_sgemm.
extension Tensor {
    /// Matrix product. `a` is [M, K] or [B, M, K]; `b` is [K, N] or [B, K, N].
    public static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank == 2 || a.rank == 3, "matmul lhs rank \(a.rank)")
        precondition(b.rank == 2 || b.rank == 3, "matmul rhs rank \(b.rank)")
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        precondition(b.shape[b.rank - 2] == k, "matmul \(a.shape) x \(b.shape)")
        let batch = a.rank == 3 ? a.shape[0] : (b.rank == 3 ? b.shape[0] : 1)
        if a.rank == 3 && b.rank == 3 { precondition(a.shape[0] == b.shape[0], "matmul batch \(a.shape) x \(b.shape)") }
        let outShape = (a.rank == 3 || b.rank == 3 ? [batch] : []) + [m, n]
        let result = Tensor(uninitializedShape: outShape)
        let strideA = a.rank == 3 ? m * k : 0, strideB = b.rank == 3 ? k * n : 0
        if strideB == 0 && a.rank == 3 {
            sgemm(m: batch * m, n: n, k: k, a: a.storage.base, lda: k, b: b.storage.base, ldb: n, c: result.storage.base, ldc: n)
        } else {
            for i in 0..<batch {
                sgemm(
                    m: m, n: n, k: k, a: a.storage.base + i * strideA, lda: k, b: b.storage.base + i * strideB, ldb: n,
                    c: result.storage.base + i * m * n, ldc: n)
            }
        }
        guard recordsGradient(a, b) else { return result }
        let (ca, cb) = (a.detached(), b.detached())
        return result.recorded("matmul", inputs: [a, b]) { g, needed in
            var gradA: Tensor? = nil, gradB: Tensor? = nil
            if needed[0] {
                let full = matmul(g, cb.transposed())
                gradA = ca.rank == 2 && full.rank == 3 ? full.sum(alongAxes: [0]) : full
            }
            if needed[1] {
                let full = matmul(ca.transposed(), g)
                gradB = cb.rank == 2 && full.rank == 3 ? full.sum(alongAxes: [0]) : full
            }
            return [gradA, gradB]
        }
    }

    /// `torch.nn.functional.linear`: `x · weightᵀ + bias` over the last axis of `x`. `weight` is [out, in].
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        let inFeatures = weight.shape[1], outFeatures = weight.shape[0]
        precondition(x.shape.last == inFeatures, "linear input \(x.shape) for weight \(weight.shape)")
        let rows = x.count / Swift.max(inFeatures, 1)
        let outShape = Array(x.shape.dropLast()) + [outFeatures]
        let result = Tensor(uninitializedShape: outShape)
        let po = result.storage.base
        if let bias {
            precondition(bias.shape == [outFeatures], "linear bias \(bias.shape)")
            for r in 0..<rows { (po + r * outFeatures).update(from: bias.storage.base, count: outFeatures) }
        }
        sgemm(
            transposeB: true, m: rows, n: outFeatures, k: inFeatures, a: x.storage.base, lda: inFeatures,
            b: weight.storage.base, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: po, ldc: outFeatures)
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        guard recordsGradient(inputs) else { return result }
        let (cx, cw) = (x.detached(), weight.detached())
        return result.recorded("linear", inputs: inputs) { g, needed in
            let g2 = g.reshaped([rows, outFeatures])
            var grads: [Tensor?] = [nil, nil]
            if needed[0] {
                let dx = Tensor(uninitializedShape: [rows, inFeatures])
                sgemm(
                    m: rows, n: inFeatures, k: outFeatures, a: g2.storage.base, lda: outFeatures,
                    b: cw.storage.base, ldb: inFeatures, c: dx.storage.base, ldc: inFeatures)
                grads[0] = dx.reshaped(cx.shape)
            }
            if needed[1] {
                let dw = Tensor(uninitializedShape: [outFeatures, inFeatures])
                sgemm(
                    transposeA: true, m: outFeatures, n: inFeatures, k: rows, a: g2.storage.base, lda: outFeatures,
                    b: cx.storage.base, ldb: inFeatures, c: dw.storage.base, ldc: inFeatures)
                grads[1] = dw
            }
            if needed.count > 2 { grads.append(needed[2] ? g2.sum(alongAxes: [0]) : nil) }
            return grads
        }
    }
}
