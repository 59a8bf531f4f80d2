import Engine

extension FCOSReversedHead {
    /// The largest dropped-term ratio (summed over a tower's layers) at which a map is kept from the reversed head.
    /// Measured with `odam bench explain --agreement-per-level 20` on FCOS-R50 (random weights) at 512x512, 640x960
    /// and 800x1216 and on the shipped model at 320x320: the lowest estimate of a map with r < 0.999 was 0.033
    /// (P3 at 512x512), while maps of P3 at 800x1216 estimate 0.016-0.019 (all r ≥ 0.9998). The estimate ranks
    /// maps but is not a certificate, hence the margin and the per-level samples behind it.
    public static let defaultErrorLimit: Float = 0.025

    /// How much of a GroupNorm layer's exact backward the frozen statistics drop, per gradient window, relative to
    /// what they keep.
    ///
    /// GroupNorm's backward is (1/σ_G)(γ_c g_c − mean_G(γ g) − x̂_c · mean_G(γ g x̂)); the reversed head keeps the
    /// first term (γ_c/σ_G) g_c. A window's gradient is zero outside the window, so the two means are window sums
    /// divided by the group's size N_G = |G|·H·W, and since Σ_G x̂ = 0 and Σ_G x̂² ≤ N_G over the whole plane, the
    /// dropped term's norm is at most sqrt(Σ_G (S_G² + T_G²) / N_G) / σ_G with S_G = Σ γ g and T_G = Σ γ g x̂ over
    /// the window: computed exactly from the window, without touching the rest of the map.
    ///
    /// - Parameters:
    ///   - gradient: [N, C, s, s] windows centred on `cells`, the gradient with respect to the layer's ReLU output.
    ///   - state: the tower state (ReLU outputs, scales γ_c/σ_G, γ and β).
    static func droppedRatios(_ gradient: Tensor, state: TowerState, layer: Int, cells: [(Int, Int)]) -> [Float] {
        let output = state.outputs[layer]
        let channels = output.shape[0], height = output.shape[1], width = output.shape[2]
        let s = gradient.shape[2], r = s / 2
        let scale = state.scales[layer], gamma = state.gammas[layer], beta = state.betas[layer]
        let groups = state.groups, perGroup = channels / groups
        let groupSize = Double(perGroup * height * width)
        var ratios = [Float](repeating: 0, count: cells.count)
        let pg = gradient.storage.base, po = output.storage.base
        ratios.withUnsafeMutableBufferPointer { out in
            parallelFor(cells.count, costPerItem: channels * s * s) { range in
                for n in range {
                    let (row, column) = cells[n]
                    var kept = 0.0, dropped = 0.0
                    for group in 0..<groups {
                        var sum = 0.0, weighted = 0.0
                        var inverseSigma = 0.0
                        for c in (group * perGroup)..<((group + 1) * perGroup) {
                            let window = pg + (n * channels + c) * s * s
                            let plane = po + c * height * width
                            let g = Double(gamma[c]), b = Double(beta[c]), k = Double(scale[c])
                            if g != 0 { inverseSigma = k / g }
                            for dy in 0..<s {
                                let y = row + dy - r
                                guard y >= 0 && y < height else { continue }
                                for dx in 0..<s {
                                    let x = column + dx - r
                                    guard x >= 0 && x < width else { continue }
                                    let activation = Double(plane[y * width + x])
                                    // The ReLU passes only where the GroupNorm output is positive; there it is γ x̂ + β.
                                    guard activation > 0 else { continue }
                                    let value = Double(window[dy * s + dx])
                                    kept += (k * value) * (k * value)
                                    guard g != 0 else { continue }
                                    sum += g * value
                                    weighted += value * (activation - b)
                                }
                            }
                        }
                        dropped += (sum * sum + weighted * weighted) / groupSize * inverseSigma * inverseSigma
                    }
                    out[n] = kept > 0 ? Float((dropped / kept).squareRoot()) : (dropped > 0 ? .infinity : 0)
                }
            }
        }
        return ratios
    }
}
