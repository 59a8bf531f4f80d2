public import Engine
public import NN

#if canImport(Glibc)
    import Glibc
#endif

/// A stack of 3x3 convolutions, each followed by an optional GroupNorm and a ReLU, as torchvision's detection heads.
///
/// FCOS names its layers `conv.{0,3,6,9}` (conv) and `conv.{1,4,7,10}` (GroupNorm); RetinaNet and the RPN use
/// `conv.{i}.0` (a `Conv2dNormActivation` without norm).
public final class ConvTower: Module {
    public let convs: [Conv2d]
    public let norms: [GroupNorm]
    let retinaNaming: Bool

    public init(channels: Int, depth: Int, groupNorm: Bool, random: inout RandomNumbers) {
        convs = (0..<depth).map { _ in
            let conv = Conv2d(channels, channels, kernel: (3, 3), padding: (1, 1), random: &random)
            initializeHeadConv(conv, random: &random)
            return conv
        }
        norms = groupNorm ? (0..<depth).map { _ in GroupNorm(groups: 32, channels: channels) } : []
        retinaNaming = !groupNorm
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var all: [(name: String, parameter: Parameter)] = []
        for (i, conv) in convs.enumerated() {
            if retinaNaming {
                all += Self.prefixed("conv.\(i).0", conv)
            } else {
                all += Self.prefixed("conv.\(3 * i)", conv) + Self.prefixed("conv.\(3 * i + 1)", norms[i])
            }
        }
        return all
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
    conv.bias?.value = Tensor(repeating: bias, shape: conv.bias!.shape)
}

/// The classifier bias torchvision starts from: the logit of a prior probability of 0.01.
public let classifierPriorBias: Float = -logf((1 - 0.01) / 0.01)
