public import Engine
public import NN

/// torchvision's ResNet (v1.5: stride on the 3x3 convolution), its layer names, and configurable widths.
public final class ResNet: Module {
    public enum Depth: Int, Sendable, Codable, CaseIterable {
        case resnet18 = 18, resnet34 = 34, resnet50 = 50, resnet101 = 101

        var blocks: [Int] {
            switch self {
            case .resnet18: [2, 2, 2, 2]
            case .resnet34: [3, 4, 6, 3]
            case .resnet50: [3, 4, 6, 3]
            case .resnet101: [3, 4, 23, 3]
            }
        }
        var usesBottleneck: Bool { self == .resnet50 || self == .resnet101 }
        var expansion: Int { usesBottleneck ? 4 : 1 }
    }

    public let depth: Depth
    public let baseWidth: Int
    let stem: ConvNorm
    let layers: [[any ResidualBlock]]

    /// - Parameter baseWidth: channels of the stem and of layer1's blocks (64 in torchvision); layers 2-4 double it.
    public init(depth: Depth, baseWidth: Int = 64, normalization: NormalizationKind = .frozen, random: inout RandomNumbers) {
        self.depth = depth
        self.baseWidth = baseWidth
        stem = ConvNorm(
            3, baseWidth, kernel: 7, stride: 2, padding: 3, normalization: normalization, names: ("conv1", "bn1"), random: &random)
        var inChannels = baseWidth
        var layers: [[any ResidualBlock]] = []
        for (index, count) in depth.blocks.enumerated() {
            let planes = baseWidth << index
            var blocks: [any ResidualBlock] = []
            for block in 0..<count {
                let stride = block == 0 && index > 0 ? 2 : 1
                let needsProjection = block == 0 && (stride != 1 || inChannels != planes * depth.expansion)
                if depth.usesBottleneck {
                    blocks.append(
                        Bottleneck(
                            inChannels, planes, stride: stride, projection: needsProjection, normalization: normalization, random: &random))
                } else {
                    blocks.append(
                        BasicBlock(
                            inChannels, planes, stride: stride, projection: needsProjection, normalization: normalization, random: &random))
                }
                inChannels = planes * depth.expansion
            }
            layers.append(blocks)
        }
        self.layers = layers
    }

    /// Output channels of layer `i` (1-4).
    public func channels(ofLayer layer: Int) -> Int { (baseWidth << (layer - 1)) * depth.expansion }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var all = stem.namedParameters
        for (index, blocks) in layers.enumerated() {
            for (number, block) in blocks.enumerated() { all += Self.prefixed("layer\(index + 1).\(number)", block) }
        }
        return all
    }

    /// The outputs of layers 1-4 (C2-C5) that `returning` names.
    public func callAsFunction(_ x: Tensor, returning: Set<Int>) -> [Int: Tensor] {
        var y = stem(x, adding: nil, relu: true).maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        var outputs: [Int: Tensor] = [:]
        for (index, blocks) in layers.enumerated() {
            for block in blocks { y = block(y) }
            if returning.contains(index + 1) { outputs[index + 1] = y }
            if returning.allSatisfy({ $0 <= index + 1 }) { break }
        }
        return outputs
    }
}

protocol ResidualBlock: UnaryModule {}

/// The two-3x3 block of ResNet-18/34.
final class BasicBlock: ResidualBlock {
    let first, second: ConvNorm
    let projection: ConvNorm?

    init(_ inChannels: Int, _ planes: Int, stride: Int, projection: Bool, normalization: NormalizationKind, random: inout RandomNumbers) {
        first = ConvNorm(
            inChannels, planes, kernel: 3, stride: stride, padding: 1, normalization: normalization, names: ("conv1", "bn1"),
            random: &random)
        second = ConvNorm(planes, planes, kernel: 3, padding: 1, normalization: normalization, names: ("conv2", "bn2"), random: &random)
        self.projection =
            projection
            ? ConvNorm(
                inChannels, planes, kernel: 1, stride: stride, normalization: normalization, names: ("downsample.0", "downsample.1"),
                random: &random)
            : nil
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        first.namedParameters + second.namedParameters + (projection?.namedParameters ?? [])
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let identity = projection.map { $0(x) } ?? x
        return second(first(x, adding: nil, relu: true), adding: identity, relu: true)
    }
}

/// The 1x1-3x3-1x1 block of ResNet-50/101.
final class Bottleneck: ResidualBlock {
    let reduce, spatial, expand: ConvNorm
    let projection: ConvNorm?

    init(_ inChannels: Int, _ planes: Int, stride: Int, projection: Bool, normalization: NormalizationKind, random: inout RandomNumbers) {
        reduce = ConvNorm(inChannels, planes, kernel: 1, normalization: normalization, names: ("conv1", "bn1"), random: &random)
        spatial = ConvNorm(
            planes, planes, kernel: 3, stride: stride, padding: 1, normalization: normalization, names: ("conv2", "bn2"), random: &random)
        expand = ConvNorm(planes, planes * 4, kernel: 1, normalization: normalization, names: ("conv3", "bn3"), random: &random)
        self.projection =
            projection
            ? ConvNorm(
                inChannels, planes * 4, kernel: 1, stride: stride, normalization: normalization, names: ("downsample.0", "downsample.1"),
                random: &random)
            : nil
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        reduce.namedParameters + spatial.namedParameters + expand.namedParameters + (projection?.namedParameters ?? [])
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let identity = projection.map { $0(x) } ?? x
        return expand(spatial(reduce(x, adding: nil, relu: true), adding: nil, relu: true), adding: identity, relu: true)
    }
}
