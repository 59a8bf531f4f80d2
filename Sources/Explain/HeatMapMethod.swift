public import Engine

#if canImport(Glibc)
    import Glibc
#endif

/// How a heat map is made from a target's gradient g and the feature map A.
public enum HeatMapMethod: Sendable, Equatable {
    /// ODAM: ReLU(Σ_c Φ(g_c) ∘ A_c), a weight per pixel.
    case odam(smoothing: GradientSmoothing = .none, gradient: GradientTransform = .identity)
    /// Grad-CAM: ReLU(Σ_c mean(g_c) · A_c), one weight per channel.
    case gradCAM
    /// Grad-CAM++: channel weights Σ_xy ReLU(g)·α with α_xy = g² / (2g² + (Σ_ab A_ab)·g³ + ε), α = 0 where g = 0
    /// (Chattopadhay et al. 2018, as pytorch-grad-cam computes it).
    case gradCAMPlusPlus

    /// The names `odam explain --method` and `odam eval explain --methods` take: `gradcam`, `gradcampp`, and `odam`
    /// optionally followed by `/gaussian:SCALE` (Φ) and `/positive`, `/negative` or `/absolute` (the gradient
    /// variant), for example `odam/gaussian:0.25/positive`.
    public static func named(_ name: String) -> HeatMapMethod? {
        switch name {
        case "gradcam": return .gradCAM
        case "gradcampp": return .gradCAMPlusPlus
        default:
            let parts = name.split(separator: "/").map(String.init)
            guard parts.first == "odam" else { return nil }
            var smoothing = GradientSmoothing.none, gradient = GradientTransform.identity
            for part in parts.dropFirst() {
                if part.hasPrefix("gaussian:"), let scale = Float(part.dropFirst("gaussian:".count)), scale > 0 {
                    smoothing = .gaussian(scale: scale)
                } else if let variant = GradientTransform(rawValue: part) {
                    gradient = variant
                } else {
                    return nil
                }
            }
            return .odam(smoothing: smoothing, gradient: gradient)
        }
    }
}

/// Φ, the local smoothing of the gradient map (paper Sec. 3.1).
public enum GradientSmoothing: Sendable, Equatable {
    /// No smoothing, as the authors' released code.
    case none
    /// A Gaussian whose σ (in cells) is `scale` times the geometric mean of the predicted box's sides on the level,
    /// at least 0.5; the kernel spans ±2σ.
    case gaussian(scale: Float)
}

/// The gradient variants of the paper's App. A.5.6, applied to g before weighting.
public enum GradientTransform: String, Sendable, Equatable, CaseIterable {
    case identity, positive, negative, absolute

    @inline(__always)
    func apply(_ g: Float) -> Float {
        switch self {
        case .identity: g
        case .positive: max(g, 0)
        case .negative: max(-g, 0)
        case .absolute: abs(g)
        }
    }
}

extension HeatMapMethod {
    /// The raw [H, W] map from a gradient and activation of shape [C, H, W].
    ///
    /// - Parameter boxCells: the predicted box's (width, height) in cells of this level (for Gaussian Φ).
    public func map(
        gradient: UnsafePointer<Float>, activation: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
        boxCells: (Float, Float) = (1, 1)
    ) -> Tensor {
        let plane = height * width
        var sums = [Float](repeating: 0, count: plane)
        switch self {
        case .odam(let smoothing, let transform):
            var smoothed = [Float](repeating: 0, count: plane)
            let kernel = smoothing.kernel(boxCells: boxCells)
            for c in 0..<channels {
                let g = gradient + c * plane, a = activation + c * plane
                if kernel.count <= 1 && transform == .identity {
                    for i in 0..<plane { sums[i] += g[i] * a[i] }
                    continue
                }
                for i in 0..<plane { smoothed[i] = transform.apply(g[i]) }
                if kernel.count > 1 { Self.blur(&smoothed, height: height, width: width, kernel: kernel) }
                for i in 0..<plane { sums[i] += smoothed[i] * a[i] }
            }
        case .gradCAM:
            for c in 0..<channels {
                let g = gradient + c * plane, a = activation + c * plane
                var mean: Float = 0
                for i in 0..<plane { mean += g[i] }
                mean /= Float(plane)
                for i in 0..<plane { sums[i] += mean * a[i] }
            }
        case .gradCAMPlusPlus:
            for c in 0..<channels {
                let g = gradient + c * plane, a = activation + c * plane
                var activationSum: Float = 0
                for i in 0..<plane { activationSum += a[i] }
                var weight: Float = 0
                for i in 0..<plane where g[i] != 0 {
                    let g2 = g[i] * g[i]
                    let alpha = g2 / (2 * g2 + activationSum * g2 * g[i] + 1e-7)
                    weight += max(g[i], 0) * alpha
                }
                for i in 0..<plane { sums[i] += weight * a[i] }
            }
        }
        return Tensor(shape: [height, width], values: sums.map { max($0, 0) })
    }

    /// A separable blur with zero padding.
    static func blur(_ values: inout [Float], height: Int, width: Int, kernel: [Float]) {
        let radius = kernel.count / 2
        var temporary = values
        for y in 0..<height {
            for x in 0..<width {
                var total: Float = 0
                for k in -radius...radius where x + k >= 0 && x + k < width { total += kernel[k + radius] * values[y * width + x + k] }
                temporary[y * width + x] = total
            }
        }
        for y in 0..<height {
            for x in 0..<width {
                var total: Float = 0
                for k in -radius...radius where y + k >= 0 && y + k < height {
                    total += kernel[k + radius] * temporary[(y + k) * width + x]
                }
                values[y * width + x] = total
            }
        }
    }
}

extension GradientSmoothing {
    /// A normalized 1-D Gaussian kernel for a box of `boxCells` (width, height) cells; one tap means no smoothing.
    func kernel(boxCells: (Float, Float)) -> [Float] {
        guard case .gaussian(let scale) = self else { return [1] }
        let sigma = max(0.5, scale * (max(boxCells.0, 0) * max(boxCells.1, 0)).squareRoot())
        let radius = max(1, Int((2 * sigma).rounded(.up)))
        let weights = (-radius...radius).map { k in expf(-Float(k * k) / (2 * sigma * sigma)) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }
}
