import CBLAS

/// Row-major single-precision GEMM: `C = alpha * op(A) * op(B) + beta * C`.
///
/// `A` is M×K (K×M when transposed), `B` is K×N (N×K when transposed), `C` is M×N, with leading dimensions
/// given in elements.
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
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
