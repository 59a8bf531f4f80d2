#if canImport(Glibc)
    import Glibc
#endif

/// Winograd F(2x2, 3x3) convolution for 3x3, stride-1, undilated, ungrouped convolutions.
///
/// Each 2x2 output tile comes from a 4x4 input tile: with U = G g Gᵀ (weights), V = Bᵀ d B (input tiles) and
/// M = U ⊙ V summed over input channels, Y = Aᵀ M A. The channel sums are 16 GEMMs (one per tile position ξ)
/// of [out × in] by [in × tiles], which need 16/36 of the multiplications of the direct convolution. The
/// transforms use only ±1 and ±½, so results stay within float32 rounding of the direct form.
package enum WinogradConv {
    /// Large enough channel counts that the GEMMs dominate the transforms.
    static let minimumChannels = 16
    /// On large maps with fewer input channels than this, the tiled im2col GEMM (K = 9·C) is faster than Winograd's
    /// 16 GEMMs with K = C (measured: 64 channels at 200x304, 344 against 241 GFLOP/s).
    static let minimumChannelsOnLargeMaps = 128
    static let largeMapPixels = 4096

    /// `ODAM_WINOGRAD=0` turns Winograd off (direct im2col convolutions only), for comparisons.
    static let enabled = ProcessEnvironment.value("ODAM_WINOGRAD") != "0"

    package static func applies(to g: ConvGeometry) -> Bool {
        enabled && g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideY == 1 && g.strideX == 1 && g.dilationY == 1
            && g.dilationX == 1 && g.groups == 1 && g.inChannels >= minimumChannels && g.outChannels >= minimumChannels
            && (g.inChannels >= minimumChannelsOnLargeMaps || g.outPixels <= largeMapPixels)
            && g.outHeight >= 2 && g.outWidth >= 2
    }

    /// The input gradient of a convolution that ``applies(to:)`` is the convolution of the output gradient with the
    /// flipped, transposed kernel and padding `2 - pad`.
    package static func appliesToBackwardInput(of g: ConvGeometry) -> Bool {
        applies(to: g) && g.padY <= 2 && g.padX <= 2 && g.height >= 2 && g.width >= 2
    }

    package static func forward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let transformed = TensorStorage(uninitializedCount: 16 * g.outChannels * g.inChannels)
        transformWeights(weight, into: transformed.base, outChannels: g.outChannels, inChannels: g.inChannels, flipTranspose: false)
        run(input: input, transformedWeights: transformed.base, output: output, g)
    }

    /// The forward pass with the weight transform cached for `weightStorage` (until its values change), for
    /// networks that run the same convolution on many levels and images.
    package static func forward(
        input: UnsafePointer<Float>, weightStorage: TensorStorage, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let transformed = cachedTransform(weightStorage, g, flipTranspose: false)
        run(input: input, transformedWeights: transformed.storage.base, output: output, g)
    }

    package static func backwardInput(
        gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let adjoint = adjointGeometry(g)
        let transformed = TensorStorage(uninitializedCount: 16 * g.outChannels * g.inChannels)
        transformWeights(weight, into: transformed.base, outChannels: g.outChannels, inChannels: g.inChannels, flipTranspose: true)
        run(input: gradOutput, transformedWeights: transformed.base, output: gradInput, adjoint)
    }

    /// The input gradient with the flipped weight transform cached for `weightStorage`.
    package static func backwardInput(
        gradOutput: UnsafePointer<Float>, weightStorage: TensorStorage, gradInput: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let transformed = cachedTransform(weightStorage, g, flipTranspose: true)
        run(input: gradOutput, transformedWeights: transformed.storage.base, output: gradInput, adjointGeometry(g))
    }

    /// The weight transform of `weightStorage`, computed once while its values are unchanged.
    private static func cachedTransform(_ weightStorage: TensorStorage, _ g: ConvGeometry, flipTranspose: Bool) -> Tensor {
        DerivedTensorCache.shared.value(for: weightStorage, kind: flipTranspose ? "winograd-adjoint" : "winograd") {
            let target = Tensor(uninitializedShape: [16 * g.outChannels * g.inChannels])
            transformWeights(
                weightStorage.base, into: target.storage.base, outChannels: g.outChannels, inChannels: g.inChannels,
                flipTranspose: flipTranspose)
            return target
        }
    }

    /// The convolution whose output is the input gradient: output gradient in, padding `2 - pad`.
    static func adjointGeometry(_ g: ConvGeometry) -> ConvGeometry {
        ConvGeometry(
            batch: g.batch, inChannels: g.outChannels, height: g.outHeight, width: g.outWidth,
            outChannels: g.inChannels, kernelHeight: 3, kernelWidth: 3, strideY: 1, strideX: 1,
            padY: 2 - g.padY, padX: 2 - g.padX, dilationY: 1, dilationX: 1, groups: 1)
    }

    /// U[ξ][o][i] = (G w[o][i] Gᵀ)[ξ]; with `flipTranspose` the kernel used is w[i][o] rotated by 180°.
    private static func transformWeights(
        _ weight: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, outChannels: Int, inChannels: Int, flipTranspose: Bool
    ) {
        let rows = flipTranspose ? inChannels : outChannels, cols = flipTranspose ? outChannels : inChannels
        let plane = rows * cols
        parallelFor(rows, costPerItem: cols * 64) { range in
            for r in range {
                for c in 0..<cols {
                    let source = weight + (flipTranspose ? (c * inChannels + r) : (r * inChannels + c)) * 9
                    @inline(__always) func k(_ j: Int) -> Float { flipTranspose ? source[8 - j] : source[j] }
                    // t = G k (4x3), one SIMD lane per kernel column; then u = t Gᵀ row by row.
                    let k0 = SIMD4<Float>(k(0), k(1), k(2), 0), k1 = SIMD4<Float>(k(3), k(4), k(5), 0),
                        k2 = SIMD4<Float>(k(6), k(7), k(8), 0)
                    let rows = (k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2)
                    let out = u + r * cols + c
                    storeWeightRow(rows.0, out, plane)
                    storeWeightRow(rows.1, out + 4 * plane, plane)
                    storeWeightRow(rows.2, out + 8 * plane, plane)
                    storeWeightRow(rows.3, out + 12 * plane, plane)
                }
            }
        }
    }

    /// Writes t Gᵀ for one row t = (t0, t1, t2) of G k: four values, `stride` apart.
    @inline(__always)
    private static func storeWeightRow(_ t: SIMD4<Float>, _ out: UnsafeMutablePointer<Float>, _ stride: Int) {
        out[0] = t[0]
        out[stride] = 0.5 * (t[0] + t[1] + t[2])
        out[2 * stride] = 0.5 * (t[0] - t[1] + t[2])
        out[3 * stride] = t[2]
    }

    /// Steps to the next tile in the order t = n·tilesPerImage + ty·tilesX + tx.
    @inline(__always)
    private static func nextTile(_ tx: inout Int, _ ty: inout Int, _ n: inout Int, tilesX: Int, tilesY: Int) {
        tx += 1
        if tx == tilesX {
            tx = 0
            ty += 1
            if ty == tilesY { (ty, n) = (0, n + 1) }
        }
    }

    /// Writes r B for one row r of Bᵀ d: four values, `stride` apart.
    @inline(__always)
    private static func storeInputRow(_ r: SIMD4<Float>, _ out: UnsafeMutablePointer<Float>, _ stride: Int) {
        out[0] = r[0] - r[2]
        out[stride] = r[1] + r[2]
        out[2 * stride] = r[2] - r[1]
        out[3 * stride] = r[1] - r[3]
    }

    /// Bᵀ d B of four horizontally neighbouring tiles whose 4x4 patches start at `patch`, `patch + 2`, `patch + 4`
    /// and `patch + 6` (all inside the image, ten columns read): value ξ of tile j goes to `out[ξ · chunk + j]`, so
    /// each of the 16 values is one contiguous four-wide store.
    @inline(__always)
    private static func transformFourTiles(
        _ patch: UnsafePointer<Float>, rowStride: Int, into out: UnsafeMutablePointer<Float>, _ chunk: Int
    ) {
        // Column q of every patch row, across the four tiles: patch columns 2j + q.
        func row(_ r: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
            let p = UnsafeRawPointer(patch + r * rowStride)
            let a = p.loadUnaligned(as: SIMD8<Float>.self), b = p.loadUnaligned(fromByteOffset: 8, as: SIMD8<Float>.self)
            return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
        }
        let d0 = row(0), d1 = row(1), d2 = row(2), d3 = row(3)
        // Rows of Bᵀ d, then columns of (Bᵀ d) B.
        @inline(__always)
        func store(_ r: Int, _ t0: SIMD4<Float>, _ t1: SIMD4<Float>, _ t2: SIMD4<Float>, _ t3: SIMD4<Float>) {
            let base = UnsafeMutableRawPointer(out + 4 * r * chunk)
            base.storeBytes(of: t0 - t2, as: SIMD4<Float>.self)
            (base + 4 * chunk).storeBytes(of: t1 + t2, as: SIMD4<Float>.self)
            (base + 8 * chunk).storeBytes(of: t2 - t1, as: SIMD4<Float>.self)
            (base + 12 * chunk).storeBytes(of: t1 - t3, as: SIMD4<Float>.self)
        }
        store(0, d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3)
        store(1, d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3)
        store(2, d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3)
        store(3, d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3)
    }

    /// Aᵀ M A of four neighbouring tiles, value ξ of tile j at `m[ξ · chunk + j]`, written as two rows of eight
    /// values at `out` and `out + rowStride`.
    @inline(__always)
    private static func untransformFourTiles(_ m: UnsafePointer<Float>, _ chunk: Int, into out: UnsafeMutablePointer<Float>, rowStride: Int)
    {
        func load(_ xi: Int) -> SIMD4<Float> { UnsafeRawPointer(m + xi * chunk).loadUnaligned(as: SIMD4<Float>.self) }
        // Rows of Aᵀ M (a, b), then their columns A: per tile (a0 + a1 + a2, a1 − a2 − a3) and the same of b.
        var a = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>()), b = a
        a.0 = load(0) + load(4) + load(8)
        a.1 = load(1) + load(5) + load(9)
        a.2 = load(2) + load(6) + load(10)
        a.3 = load(3) + load(7) + load(11)
        b.0 = load(4) - load(8) - load(12)
        b.1 = load(5) - load(9) - load(13)
        b.2 = load(6) - load(10) - load(14)
        b.3 = load(7) - load(11) - load(15)
        @inline(__always)
        func interleaved(_ left: SIMD4<Float>, _ right: SIMD4<Float>) -> SIMD8<Float> {
            SIMD8(left[0], right[0], left[1], right[1], left[2], right[2], left[3], right[3])
        }
        UnsafeMutableRawPointer(out).storeBytes(of: interleaved(a.0 + a.1 + a.2, a.1 - a.2 - a.3), as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(out + rowStride).storeBytes(of: interleaved(b.0 + b.1 + b.2, b.1 - b.2 - b.3), as: SIMD8<Float>.self)
    }

    /// Four input values of row `y` from column `x0`, zero outside the image.
    @inline(__always)
    private static func loadEdgeRow(_ plane: UnsafePointer<Float>, _ y: Int, _ x0: Int, _ h: Int, _ w: Int) -> SIMD4<Float> {
        var out = SIMD4<Float>()
        if y < 0 || y >= h { return out }
        for j in 0..<4 where x0 + j >= 0 && x0 + j < w { out[j] = plane[y * w + x0 + j] }
        return out
    }

    private static func run(
        input: UnsafePointer<Float>, transformedWeights u: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvGeometry
    ) {
        let outH = g.outHeight, outW = g.outWidth
        let tilesY = (outH + 1) / 2, tilesX = (outW + 1) / 2
        let tilesPerImage = tilesY * tilesX
        let tiles = g.batch * tilesPerImage
        let cin = g.inChannels, cout = g.outChannels
        let v = TensorStorage(uninitializedCount: 16 * cin * tiles)
        let m = TensorStorage(uninitializedCount: 16 * cout * tiles)
        let pv = v.base, pm = m.base
        let h = g.height, w = g.width, padY = g.padY, padX = g.padX

        // Tiles are numbered t = n·tilesPerImage + ty·tilesX + tx and handled in chunks of consecutive numbers, which
        // may span tile rows and images: each chunk is transformed into a small buffer, then written with 16
        // contiguous copies (writing 16 distant streams element by element is several times slower, and copying
        // row by row costs a call per two or three tiles on the small maps of the fast ODAM path).
        let chunk = min(tiles, 256)
        let chunks = (tiles + chunk - 1) / chunk
        // V[ξ][c][t] = (Bᵀ d B)[ξ] for the 4x4 input tile d of tile t, channel c.
        parallelFor(cin * chunks, costPerItem: chunk * 48) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * chunk) { scratch in
                let local = scratch.baseAddress!
                for item in range {
                    let c = item / chunks, first = (item % chunks) * chunk
                    let count = min(chunk, tiles - first)
                    var n = first / tilesPerImage, ty = (first % tilesPerImage) / tilesX, tx = first % tilesX
                    var k = 0
                    while k < count {
                        let plane = input + (n * cin + c) * h * w
                        let y0 = 2 * ty - padY, x0 = 2 * tx - padX
                        if k + 4 <= count && tx + 4 <= tilesX && y0 >= 0 && y0 + 4 <= h && x0 >= 0 && x0 + 10 <= w {
                            // Four neighbouring interior tiles at once, one SIMD lane per tile.
                            transformFourTiles(plane + y0 * w + x0, rowStride: w, into: local + k, chunk)
                            k += 4
                            tx += 3
                            nextTile(&tx, &ty, &n, tilesX: tilesX, tilesY: tilesY)
                            continue
                        }
                        let d0: SIMD4<Float>, d1: SIMD4<Float>, d2: SIMD4<Float>, d3: SIMD4<Float>
                        if y0 >= 0 && y0 + 4 <= h && x0 >= 0 && x0 + 4 <= w {
                            let p = UnsafeRawPointer(plane + y0 * w + x0)
                            let rowBytes = w * 4
                            d0 = p.loadUnaligned(as: SIMD4<Float>.self)
                            d1 = p.loadUnaligned(fromByteOffset: rowBytes, as: SIMD4<Float>.self)
                            d2 = p.loadUnaligned(fromByteOffset: 2 * rowBytes, as: SIMD4<Float>.self)
                            d3 = p.loadUnaligned(fromByteOffset: 3 * rowBytes, as: SIMD4<Float>.self)
                        } else {
                            d0 = loadEdgeRow(plane, y0, x0, h, w)
                            d1 = loadEdgeRow(plane, y0 + 1, x0, h, w)
                            d2 = loadEdgeRow(plane, y0 + 2, x0, h, w)
                            d3 = loadEdgeRow(plane, y0 + 3, x0, h, w)
                        }
                        // Rows of Bᵀ d, then columns of (Bᵀ d) B.
                        storeInputRow(d0 - d2, local + k, chunk)
                        storeInputRow(d1 + d2, local + 4 * chunk + k, chunk)
                        storeInputRow(d2 - d1, local + 8 * chunk + k, chunk)
                        storeInputRow(d1 - d3, local + 12 * chunk + k, chunk)
                        nextTile(&tx, &ty, &n, tilesX: tilesX, tilesY: tilesY)
                        k += 1
                    }
                    let target = pv + c * tiles + first
                    for xi in 0..<16 { (target + xi * cin * tiles).update(from: local + xi * chunk, count: count) }
                }
            }
        }
        // The 16 GEMMs are shared out whole among the threads (each single-threaded inside the region): one parallel
        // region instead of one per GEMM, and no operand packed twice.
        parallelFor(16, costPerItem: 1 << 30) { range in
            for xi in range {
                sgemm(
                    m: cout, n: tiles, k: cin, a: u + xi * cout * cin, lda: cin, b: pv + xi * cin * tiles, ldb: tiles,
                    c: pm + xi * cout * tiles, ldc: tiles)
            }
        }
        // Y = Aᵀ M A for each tile, clipped at the output's edge; in the chunks of the input transform.
        parallelFor(cout * chunks, costPerItem: chunk * 40) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * chunk) { scratch in
                let local = scratch.baseAddress!
                for item in range {
                    let o = item / chunks, first = (item % chunks) * chunk
                    let count = min(chunk, tiles - first)
                    let source = pm + o * tiles + first
                    for xi in 0..<16 { (local + xi * chunk).update(from: source + xi * cout * tiles, count: count) }
                    var n = first / tilesPerImage, ty = (first % tilesPerImage) / tilesX, tx = first % tilesX
                    var k = 0
                    while k < count {
                        let plane = output + (n * cout + o) * outH * outW
                        if k + 4 <= count && tx + 4 <= tilesX && 2 * tx + 8 <= outW && 2 * ty + 2 <= outH {
                            // Four neighbouring tiles whose 2x2 outputs all lie inside: eight contiguous values per row.
                            untransformFourTiles(local + k, chunk, into: plane + 2 * ty * outW + 2 * tx, rowStride: outW)
                            k += 4
                            tx += 3
                            nextTile(&tx, &ty, &n, tilesX: tilesX, tilesY: tilesY)
                            continue
                        }
                        let p = local + k
                        let m0 = SIMD4(p[0], p[chunk], p[2 * chunk], p[3 * chunk])
                        let m1 = SIMD4(p[4 * chunk], p[5 * chunk], p[6 * chunk], p[7 * chunk])
                        let m2 = SIMD4(p[8 * chunk], p[9 * chunk], p[10 * chunk], p[11 * chunk])
                        let m3 = SIMD4(p[12 * chunk], p[13 * chunk], p[14 * chunk], p[15 * chunk])
                        let a = m0 + m1 + m2, b = m1 - m2 - m3
                        let x = 2 * tx, y = 2 * ty
                        plane[y * outW + x] = a[0] + a[1] + a[2]
                        if x + 1 < outW { plane[y * outW + x + 1] = a[1] - a[2] - a[3] }
                        if y + 1 < outH {
                            plane[(y + 1) * outW + x] = b[0] + b[1] + b[2]
                            if x + 1 < outW { plane[(y + 1) * outW + x + 1] = b[1] - b[2] - b[3] }
                        }
                        nextTile(&tx, &ty, &n, tilesX: tilesX, tilesY: tilesY)
                        k += 1
                    }
                }
            }
        }
    }
}
