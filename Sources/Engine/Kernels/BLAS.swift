import CBLAS

/// Row-major single-precision GEMM: `C = alpha * op(A) * op(B) + beta * C`.
///
/// `A` is M×K (K×M when transposed), `B` is K×N (N×K when transposed), `C` is M×N, with leading dimensions
/// given in elements. Large products are split into column (or row) blocks, one per compute thread, each a
/// single-threaded OpenBLAS call: OpenBLAS's own worker threads spin after every call, which on two cores steals
/// the time of the engine's other loops.
@inline(__always)
package func sgemm(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        if beta == 0 {
            for row in 0..<m { (c + row * ldc).update(repeating: 0, count: n) }
        }
        return
    }
    let threads = ComputeThreads.count
    let work = Double(m) * Double(n) * Double(k)
    if threads == 1 || work < 4e6 || ComputeThreads.isInsideParallelRegion {
        blasSgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    // Split the larger of M and N into one block per thread.
    nonisolated(unsafe) let (pa, pb, pc) = (a, b, c)
    if n >= m {
        let blocks = min(threads, max(1, n / 16))
        parallelFor(blocks, costPerItem: 1 << 30) { range in
            for block in range {
                let start = n * block / blocks, end = n * (block + 1) / blocks
                let bBlock = transposeB ? pb + start * ldb : pb + start
                blasSgemm(transposeA, transposeB, m, end - start, k, alpha, pa, lda, bBlock, ldb, beta, pc + start, ldc)
            }
        }
    } else {
        let blocks = min(threads, max(1, m / 16))
        parallelFor(blocks, costPerItem: 1 << 30) { range in
            for block in range {
                let start = m * block / blocks, end = m * (block + 1) / blocks
                let aBlock = transposeA ? pa + start : pa + start * lda
                blasSgemm(transposeA, transposeB, end - start, n, k, alpha, aBlock, lda, pb, ldb, beta, pc + start * ldc, ldc)
            }
        }
    }
}

@inline(__always)
private func blasSgemm(
    _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
