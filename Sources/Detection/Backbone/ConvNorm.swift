public import Engine
public import NN

/// How a backbone normalizes: torchvision's frozen batch-norm (pretrained and inference) or batch-norm with
/// batch statistics (training from scratch).
public enum NormalizationKind: String, Sendable, Codable {
    case frozen, batchNorm
}

/// A bias-free convolution followed by a batch-norm, named as siblings (`conv1` / `bn1`) in the state dict.
///
/// With frozen statistics and no gradient recording, the norm is folded into the convolution's weights once
/// (and refolded when the weights change), which saves a pass over every activation.
public final class ConvNorm: UnaryModule {
    public let conv: Conv2d
    public let frozen: FrozenBatchNorm2d?
    public let batchNorm: BatchNorm2d?
    let convName: String, normName: String
    private var folded: (key: [ObjectIdentifier], weight: Tensor, bias: Tensor)?

    public init(
        _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
        normalization: NormalizationKind, names: (conv: String, norm: String), random: inout RandomNumbers
    ) {
        conv = Conv2d(
            inChannels, outChannels, kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding),
            bias: false, random: &random)
        frozen = normalization == .frozen ? FrozenBatchNorm2d(outChannels) : nil
        batchNorm = normalization == .batchNorm ? BatchNorm2d(outChannels) : nil
        convName = names.conv
        normName = names.norm
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        Self.prefixed(convName, conv) + Self.prefixed(normName, (frozen as (any Module)?) ?? batchNorm!)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { callAsFunction(x, adding: nil, relu: false) }

    /// conv → norm → (+ residual) → (ReLU); with frozen statistics and no gradient recording, one convolution
    /// with folded weights and a single fused pass for bias, residual and ReLU.
    public func callAsFunction(_ x: Tensor, adding residual: Tensor?, relu: Bool) -> Tensor {
        if let frozen, !x.requiresGradient, !conv.weight.value.requiresGradient, !frozen.weight.value.requiresGradient,
            !(residual?.requiresGradient ?? false)
        {
            let (weight, bias) = foldedParameters(frozen)
            return Tensor.conv2d(x, weight: weight, bias: bias, stride: conv.stride, padding: conv.padding, adding: residual, relu: relu)
        }
        var y = conv(x)
        y = frozen.map { $0(y) } ?? batchNorm!(y)
        if let residual { y = y + residual }
        return relu ? y.relu() : y
    }

    private func foldedParameters(_ norm: FrozenBatchNorm2d) -> (Tensor, Tensor) {
        let key = [conv.weight, norm.weight, norm.bias, norm.runningMean, norm.runningVariance].map { ObjectIdentifier($0.value.storage) }
        if let folded, folded.key == key { return (folded.weight, folded.bias) }
        let (weight, bias) = withoutGradients {
            let scale = norm.weight.value / (norm.runningVariance.value + norm.epsilon).sqrt()
            let outChannels = conv.weight.shape[0]
            return (conv.weight.value * scale.reshaped([outChannels, 1, 1, 1]), norm.bias.value - norm.runningMean.value * scale)
        }
        folded = (key, weight, bias)
        return (weight, bias)
    }
}
