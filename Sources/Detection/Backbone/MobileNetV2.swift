public import Engine
public import NN

/// A convolution with TensorFlow's "SAME" padding: the output has ceil(input / stride) cells and the padding goes
/// after the input when it is odd (so a stride-2 layer pads one row and column at the bottom and right of an even
/// input), with the batch norm already folded into its weight and bias, and optionally ReLU6.
public final class SameConv: UnaryModule {
    public let conv: Conv2d
    public let kernel: Int, stride: Int
    public let relu6: Bool

    public init(
        _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, depthwise: Bool = false, relu6: Bool,
        random: inout RandomNumbers
    ) {
        conv = Conv2d(
            inChannels, outChannels, kernel: (kernel, kernel), stride: (stride, stride), groups: depthwise ? inChannels : 1, bias: true,
            random: &random)
        self.kernel = kernel
        self.stride = stride
        self.relu6 = relu6
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { conv.namedParameters }

    /// TensorFlow's padding of one axis: (before, after).
    public static func padding(size: Int, kernel: Int, stride: Int) -> (Int, Int) {
        let out = (size + stride - 1) / stride
        let total = max((out - 1) * stride + kernel - size, 0)
        return (total / 2, total - total / 2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let rows = Self.padding(size: x.shape[2], kernel: kernel, stride: stride)
        let columns = Self.padding(size: x.shape[3], kernel: kernel, stride: stride)
        // Odd totals pad after the input (TensorFlow's SAME), which the convolution's symmetric padding cannot do.
        let symmetric = rows.0 == rows.1 && columns.0 == columns.1
        return Tensor.conv2d(
            symmetric ? x : x.padded([columns, rows]), weight: conv.weight.value, bias: conv.bias?.value, stride: conv.stride,
            padding: symmetric ? (rows.0, columns.0) : (0, 0), groups: conv.groups, relu: relu6, reluCeiling: 6)
    }
}

/// MobileNetV2 as TensorFlow's Object Detection API builds it for SSDLite (depth multiplier 1): a stride-2 stem,
/// 17 inverted residual blocks and a 1x1 convolution to 1280 channels; it returns the expansion output of block 13
/// (stride 16, 576 channels) and the last layer (stride 32, 1280 channels).
public final class MobileNetV2: Module {
    /// One inverted residual block: 1x1 expansion (none in the first block), 3x3 depthwise, 1x1 linear projection,
    /// and the input added back when the shape is unchanged.
    public final class Block: Module {
        public let expand: SameConv?
        public let depthwise: SameConv
        public let project: SameConv
        public let residual: Bool

        init(_ inChannels: Int, expanded: Int, _ outChannels: Int, stride: Int, random: inout RandomNumbers) {
            expand = expanded == inChannels ? nil : SameConv(inChannels, expanded, kernel: 1, relu6: true, random: &random)
            depthwise = SameConv(expanded, expanded, kernel: 3, stride: stride, depthwise: true, relu6: true, random: &random)
            project = SameConv(expanded, outChannels, kernel: 1, relu6: false, random: &random)
            residual = stride == 1 && inChannels == outChannels
        }

        public var namedParameters: [(name: String, parameter: Parameter)] {
            (expand.map { Self.prefixed("expand", $0) } ?? []) + Self.prefixed("depthwise", depthwise) + Self.prefixed("project", project)
        }

        /// The block's output and its expansion output (the SSD feature of block 13).
        func callAsFunction(_ x: Tensor) -> (output: Tensor, expansion: Tensor) {
            let expansion = expand.map { $0(x) } ?? x
            let y = project(depthwise(expansion))
            return (residual ? y + x : y, expansion)
        }
    }

    /// (input, expanded, output, stride) of each block.
    static let blockShapes: [(Int, Int, Int, Int)] = [
        (32, 32, 16, 1), (16, 96, 24, 2), (24, 144, 24, 1), (24, 144, 32, 2), (32, 192, 32, 1), (32, 192, 32, 1), (32, 192, 64, 2),
        (64, 384, 64, 1), (64, 384, 64, 1), (64, 384, 64, 1), (64, 384, 96, 1), (96, 576, 96, 1), (96, 576, 96, 1),
        (96, 576, 160, 2), (160, 960, 160, 1), (160, 960, 160, 1), (160, 960, 320, 1),
    ]
    /// The block whose expansion output is the first SSD feature map.
    static let firstFeatureBlock = 13

    public let stem: SameConv
    public let blocks: [Block]
    public let last: SameConv

    public init(random: inout RandomNumbers) {
        stem = SameConv(3, 32, kernel: 3, stride: 2, relu6: true, random: &random)
        blocks = Self.blockShapes.map { Block($0.0, expanded: $0.1, $0.2, stride: $0.3, random: &random) }
        last = SameConv(320, 1280, kernel: 1, relu6: true, random: &random)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        Self.prefixed("stem", stem) + blocks.enumerated().flatMap { Self.prefixed("blocks.\($0.offset)", $0.element) }
            + Self.prefixed("last", last)
    }

    /// The second feature map from the first (block 13's expansion output): the rest of block 13 (stride 2, no
    /// residual), the later blocks and the last convolution.
    public func secondFeature(fromFirst expansion: Tensor) -> Tensor {
        let block = blocks[Self.firstFeatureBlock]
        var y = block.project(block.depthwise(expansion))
        for later in blocks.dropFirst(Self.firstFeatureBlock + 1) { y = later(y).output }
        return last(y)
    }

    /// The two feature maps SSDLite predicts from: [N, 576, H/16, W/16] and [N, 1280, H/32, W/32].
    public func callAsFunction(_ x: Tensor) -> [Tensor] {
        var y = stem(x)
        var features: [Tensor] = []
        for (index, block) in blocks.enumerated() {
            let (output, expansion) = block(y)
            if index == Self.firstFeatureBlock { features.append(expansion) }
            y = output
        }
        return features + [last(y)]
    }
}
