public import Engine
public import NN

#if canImport(Glibc)
    import Glibc
#endif

/// A stack of 3x3 convolutions, each followed by an optional GroupNorm and a ReLU, as torchvision's detection heads.
public final class ConvTower: Module {
    /// How torchvision builds and names the tower.
    public enum Style: Sendable {
        /// FCOS: convolutions with bias and GroupNorm, named `conv.{0,3,6,9}` and `conv.{1,4,7,10}`.
        case fcos
        /// RetinaNet (v1) and the RPN: `Conv2dNormActivation` without norm, `conv.{i}.0`, with bias.
        case plain
        /// RetinaNet v2: `Conv2dNormActivation` with GroupNorm, `conv.{i}.0` (no bias) and `conv.{i}.1`.
        case normActivation
    }

    public let convs: [Conv2d]
    public let norms: [GroupNorm]
    let style: Style

    public init(channels: Int, depth: Int, style: Style, random: inout RandomNumbers) {
        convs = (0..<depth).map { _ in
            let conv = Conv2d(channels, channels, kernel: (3, 3), padding: (1, 1), bias: style != .normActivation, random: &random)
            initializeHeadConv(conv, random: &random)
            return conv
        }
        norms = style == .plain ? [] : (0..<depth).map { _ in GroupNorm(groups: 32, channels: channels) }
        self.style = style
    }

    /// FCOS's tower (`groupNorm`) or RetinaNet v1's.
    public convenience init(channels: Int, depth: Int, groupNorm: Bool, random: inout RandomNumbers) {
        self.init(channels: channels, depth: depth, style: groupNorm ? .fcos : .plain, random: &random)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var all: [(name: String, parameter: Parameter)] = []
        for (i, conv) in convs.enumerated() {
            switch style {
            case .plain: all += Self.prefixed("conv.\(i).0", conv)
            case .fcos: all += Self.prefixed("conv.\(3 * i)", conv) + Self.prefixed("conv.\(3 * i + 1)", norms[i])
            case .normActivation: all += Self.prefixed("conv.\(i).0", conv) + Self.prefixed("conv.\(i).1", norms[i])
            }
        }
        return all
    }

    /// The forward pass, keeping each layer's ReLU output and GroupNorm scale γ_c/σ (per image) in `layers`:
    /// what the reversed head (the ODAM fast path) backpropagates through.
    public func callAsFunction(_ x: Tensor, recording layers: inout [TowerLayer]) -> Tensor {
        var y = x
        for (conv, norm) in zip(convs, norms) {
            let z = conv(y)
            let images = z.shape[0], channels = z.shape[1], plane = z.shape[2] * z.shape[3], perGroup = channels / norm.groups
            var scale = [Float](repeating: 0, count: images * channels)
            let gamma = norm.weight.value.scalars
            z.withUnsafeBufferPointer { values in
                for n in 0..<images {
                    for g in 0..<norm.groups {
                        var sum = 0.0, squares = 0.0
                        let start = (n * channels + g * perGroup) * plane
                        for i in start..<(start + perGroup * plane) {
                            sum += Double(values[i])
                            squares += Double(values[i]) * Double(values[i])
                        }
                        let count = Double(perGroup * plane), mean = sum / count
                        let inverse = Float(1 / (max(squares / count - mean * mean, 0) + Double(norm.epsilon)).squareRoot())
                        for c in (g * perGroup)..<((g + 1) * perGroup) { scale[n * channels + c] = gamma[c] * inverse }
                    }
                }
            }
            y = norm.withReLU(z)
            layers.append(TowerLayer(output: y, scale: Tensor(shape: [images, channels], values: scale)))
        }
        return y
    }

    /// The tower from its first convolution's output `z` on (that convolution left out): what the exact path
    /// backpropagates through when the first convolution's input gradient is folded into the map (see
    /// `FCOSExplainer`).
    public func afterFirstConvolution(_ z: Tensor) -> Tensor {
        var y = norms.isEmpty ? z.relu() : norms[0].withReLU(z)
        for i in convs.indices.dropFirst() {
            y =
                norms.isEmpty
                ? Tensor.conv2d(y, weight: convs[i].weight.value, bias: convs[i].bias?.value, padding: convs[i].padding, relu: true)
                : norms[i].withReLU(convs[i](y))
        }
        return y
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        for (i, conv) in convs.enumerated() {
            if norms.isEmpty {
                y = Tensor.conv2d(y, weight: conv.weight.value, bias: conv.bias?.value, padding: conv.padding, relu: true)
            } else {
                y = norms[i].withReLU(conv(y))
            }
        }
        return y
    }
}

/// torchvision's detection-head initialization: weights normal with std 0.01, bias `bias`.
public func initializeHeadConv(_ conv: Conv2d, bias: Float = 0, random: inout RandomNumbers) {
    conv.weight.value = random.normal(conv.weight.shape, standardDeviation: 0.01)
    if let parameter = conv.bias { parameter.value = Tensor(repeating: bias, shape: parameter.shape) }
}

/// The classifier bias torchvision starts from: the logit of a prior probability of 0.01.
public let classifierPriorBias: Float = -logf((1 - 0.01) / 0.01)

/// One GroupNorm tower layer as the forward pass left it: its ReLU output [N, C, H, W] and γ_c/σ [N, C].
public struct TowerLayer: Sendable {
    public var output: Tensor
    public var scale: Tensor
}
