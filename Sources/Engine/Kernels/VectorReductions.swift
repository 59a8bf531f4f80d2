/// Sums over contiguous floats with SIMD accumulators. A scalar `s += p[i]` loop is not vectorized (float addition
/// is not reassociated), and its dependency chain adds one value per four cycles; sixteen lanes in two accumulators
/// keep the loads flowing. The summation order differs from a sequential loop by rounding only.
@inline(__always)
package func vectorSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    let raw = UnsafeRawPointer(p)
    var a = SIMD16<Float>(), b = SIMD16<Float>()
    var i = 0
    while i + 32 <= count {
        a += raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
        b += raw.loadUnaligned(fromByteOffset: 4 * (i + 16), as: SIMD16<Float>.self)
        i += 32
    }
    var total = (a + b).sum()
    while i < count {
        total += p[i]
        i += 1
    }
    return total
}

/// Σ (p[i] − mean)².
@inline(__always)
package func vectorSquaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, mean: Float) -> Float {
    let raw = UnsafeRawPointer(p)
    let m = SIMD16<Float>(repeating: mean)
    var a = SIMD16<Float>(), b = SIMD16<Float>()
    var i = 0
    while i + 32 <= count {
        let d0 = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) - m
        let d1 = raw.loadUnaligned(fromByteOffset: 4 * (i + 16), as: SIMD16<Float>.self) - m
        a += d0 * d0
        b += d1 * d1
        i += 32
    }
    var total = (a + b).sum()
    while i < count {
        let d = p[i] - mean
        total += d * d
        i += 1
    }
    return total
}

/// (Σ dy[i], Σ dy[i]·(x[i] − mean)).
@inline(__always)
package func vectorSumAndCenteredDot(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, mean: Float) -> (Float, Float) {
    let rawDy = UnsafeRawPointer(dy), rawX = UnsafeRawPointer(x)
    let m = SIMD16<Float>(repeating: mean)
    var sum = SIMD16<Float>(), dot = SIMD16<Float>()
    var i = 0
    while i + 16 <= count {
        let g = rawDy.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
        sum += g
        dot += g * (rawX.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) - m)
        i += 16
    }
    var s = sum.sum(), d = dot.sum()
    while i < count {
        s += dy[i]
        d += dy[i] * (x[i] - mean)
        i += 1
    }
    return (s, d)
}
