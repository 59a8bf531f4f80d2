public import Engine
public import NN

/// torchvision's `FeaturePyramidNetwork` with its extra levels.
public final class FeaturePyramid: Module {
    public enum ExtraLevels: String, Sendable, Codable {
        /// P6 and P7 from P5 (FCOS, RetinaNet): `LastLevelP6P7(256, 256)`.
        case p6p7
        /// P6 and P7 from C5: `LastLevelP6P7(2048, 256)` (RetinaNet v2).
        case p6p7FromC5
        /// A stride-2 subsampling of the last level (Faster R-CNN's "pool").
        case maxPool
        case none
    }

    let inner: [any UnaryModule]
    let layer: [any UnaryModule]
    let extra: ExtraLevels
    let p6: Conv2d?, p7: Conv2d?
    public let outChannels: Int

    /// - Parameter batchNorm: each block a bias-free convolution and a batch-norm (`Conv2dNormActivation` with
    ///   `norm_layer=BatchNorm2d`, Faster R-CNN v2), named `{i}.0` and `{i}.1`.
    public init(inChannels: [Int], outChannels: Int, extra: ExtraLevels, batchNorm: Bool = false, random: inout RandomNumbers) {
        func block(_ input: Int, kernel: Int) -> any UnaryModule {
            batchNorm
                ? ConvNorm(
                    input, outChannels, kernel: kernel, padding: kernel / 2, normalization: .batchNorm, names: ("0", "1"), random: &random)
                : Conv2d(input, outChannels, kernel: (kernel, kernel), padding: (kernel / 2, kernel / 2), random: &random)
        }
        inner = inChannels.map { block($0, kernel: 1) }
        layer = inChannels.map { _ in block(outChannels, kernel: 3) }
        self.extra = extra
        self.outChannels = outChannels
        switch extra {
        case .p6p7, .p6p7FromC5:
            p6 = Conv2d(
                extra == .p6p7 ? outChannels : inChannels.last!, outChannels, kernel: (3, 3), stride: (2, 2), padding: (1, 1),
                random: &random)
            p7 = Conv2d(outChannels, outChannels, kernel: (3, 3), stride: (2, 2), padding: (1, 1), random: &random)
        default:
            p6 = nil
            p7 = nil
        }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var all: [(name: String, parameter: Parameter)] = []
        // A plain convolution is the block's `0`; a ConvNorm names its own `0` and `1`.
        for (i, block) in inner.enumerated() { all += Self.prefixed("inner_blocks.\(i)" + (block is Conv2d ? ".0" : ""), block) }
        for (i, block) in layer.enumerated() { all += Self.prefixed("layer_blocks.\(i)" + (block is Conv2d ? ".0" : ""), block) }
        if let p6, let p7 { all += Self.prefixed("extra_blocks.p6", p6) + Self.prefixed("extra_blocks.p7", p7) }
        return all
    }

    /// The pyramid levels, finest first, from backbone features (finest first).
    public func callAsFunction(_ features: [Tensor]) -> [Tensor] {
        var lastInner = inner[features.count - 1](features[features.count - 1])
        var results = [layer[features.count - 1](lastInner)]
        for index in stride(from: features.count - 2, through: 0, by: -1) {
            let lateral = inner[index](features[index])
            let topDown = lastInner.interpolated(size: (lateral.shape[2], lateral.shape[3]), mode: .nearest)
            lastInner = lateral + topDown
            results.insert(layer[index](lastInner), at: 0)
        }
        switch extra {
        case .p6p7, .p6p7FromC5:
            let p6Output = p6!(extra == .p6p7 ? results.last! : features.last!)
            results += [p6Output, p7!(p6Output.relu())]
        case .maxPool:
            results.append(results.last!.maxPool2d(kernel: (1, 1), stride: (2, 2)))
        case .none:
            break
        }
        return results
    }
}

/// A ResNet body and an FPN, named `body.*` and `fpn.*` as torchvision's `BackboneWithFPN`.
public final class ResNetFPN: Module {
    public let body: ResNet
    public let fpn: FeaturePyramid
    public let returnedLayers: [Int]

    public init(
        depth: ResNet.Depth, baseWidth: Int = 64, returnedLayers: [Int], fpnChannels: Int = 256,
        extra: FeaturePyramid.ExtraLevels, normalization: NormalizationKind = .frozen, fpnBatchNorm: Bool = false,
        random: inout RandomNumbers
    ) {
        let body = ResNet(depth: depth, baseWidth: baseWidth, normalization: normalization, random: &random)
        self.body = body
        self.returnedLayers = returnedLayers
        fpn = FeaturePyramid(
            inChannels: returnedLayers.map { body.channels(ofLayer: $0) }, outChannels: fpnChannels, extra: extra, batchNorm: fpnBatchNorm,
            random: &random)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        Self.prefixed("body", body) + Self.prefixed("fpn", fpn)
    }

    /// Backbone features (C levels) then pyramid levels, with the time each took.
    public func callAsFunction(_ x: Tensor, timings: inout StageTimings) -> (body: [Tensor], pyramid: [Tensor]) {
        let bodyOutputs = timings.measure(.backbone) { body(x, returning: Set(returnedLayers)) }
        let features = returnedLayers.map { bodyOutputs[$0]! }
        let pyramid = timings.measure(.fpn) { fpn(features) }
        return (features, pyramid)
    }
}
