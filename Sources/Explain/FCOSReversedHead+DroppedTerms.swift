import Engine

extension FCOSReversedHead {
    /// The dropped-term ratio (summed over a tower's layers) above which the runner computes a map exactly up front;
    /// maps at or below it stand if their level's samples, which include the highest estimates, agree with exact maps.
    /// The ratio grows about 2x per FPN level at the same agreement (it scales with 1/sqrt of a group's cells), so
    /// one limit cannot separate good from bad maps on every level: on FCOS-R50 (random weights) at 800x1216, P3
    /// estimates 0.016-0.019, P4 0.032-0.037 and P5 0.064-0.076 with every map at r ≥ 0.999, while on P6 maps from
    /// 0.115 up fall below (`odam bench explain --agreement-per-level 20`), and on P3 at 512x512 one map of 0.033 did.
    /// The limit saves the samples of levels that would fail; the samples certify the rest.
    public static let defaultErrorLimit: Float = 0.1

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
