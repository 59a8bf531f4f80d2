public import Engine

/// `torch.nn.Conv2d`.
public final class Conv2d: UnaryModule {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int

    /// A convolution initialized as PyTorch does (uniform in ±1/sqrt(fan_in) for weight and bias).
    public init(
        _ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
        padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
        random: inout RandomNumbers
    ) {
        let fanIn = inChannels / groups * kernel.0 * kernel.1
        let bound = 1 / Float(fanIn).squareRoot()
        weight = Parameter(random.uniform([outChannels, inChannels / groups, kernel.0, kernel.1], -bound, bound))
        self.bias = bias ? Parameter(random.uniform([outChannels], -bound, bound)) : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// `torch.nn.Linear`.
public final class Linear: UnaryModule {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, random: inout RandomNumbers) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(random.uniform([outFeatures, inFeatures], -bound, bound))
        self.bias = bias ? Parameter(random.uniform([outFeatures], -bound, bound)) : nil
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.linear(x, weight: weight.value, bias: bias?.value)
    }
}

/// torchvision's `FrozenBatchNorm2d`: fixed statistics and affine parameters, all buffers.
public final class FrozenBatchNorm2d: UnaryModule {
    public let weight, bias, runningMean, runningVariance: Parameter
    public let epsilon: Float

    public init(_ channels: Int, epsilon: Float = 1e-5) {
        weight = Parameter(Tensor(repeating: 1, shape: [channels]), isBuffer: true)
        bias = Parameter(Tensor(zeros: [channels]), isBuffer: true)
        runningMean = Parameter(Tensor(zeros: [channels]), isBuffer: true)
        runningVariance = Parameter(Tensor(repeating: 1, shape: [channels]), isBuffer: true)
        self.epsilon = epsilon
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVariance)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.frozenBatchNorm(
            x, weight: weight.value, bias: bias.value, runningMean: runningMean.value,
            runningVariance: runningVariance.value, epsilon: epsilon)
    }
}

/// Whether batch-norm layers train: inside ``withTrainingMode(_:)`` they normalize with batch statistics and
/// update their running statistics (PyTorch's `model.train()`, scoped to a call).
public enum TrainingMode {
    @TaskLocal public static var isActive = false
}

/// Runs `body` with batch-norm layers in training mode.
public func withTrainingMode<R>(_ body: () throws -> R) rethrows -> R {
    try TrainingMode.$isActive.withValue(true, operation: body)
}

/// `torch.nn.BatchNorm2d`: batch statistics and running-statistics updates while training, running statistics otherwise.
public final class BatchNorm2d: UnaryModule {
    public let weight, bias, runningMean, runningVariance, batchesTracked: Parameter
    public let epsilon: Float, momentum: Float
    public var isTraining = false

    public init(_ channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        weight = Parameter(Tensor(repeating: 1, shape: [channels]))
        bias = Parameter(Tensor(zeros: [channels]))
        runningMean = Parameter(Tensor(zeros: [channels]), isBuffer: true)
        runningVariance = Parameter(Tensor(repeating: 1, shape: [channels]), isBuffer: true)
        batchesTracked = Parameter(Tensor(zeros: []), isBuffer: true)
        self.epsilon = epsilon
        self.momentum = momentum
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [
            ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVariance),
            ("num_batches_tracked", batchesTracked),
        ]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var mean = runningMean.value, variance = runningVariance.value
        let training = isTraining || TrainingMode.isActive
        let y = Tensor.batchNorm(
            x, weight: weight.value, bias: bias.value, runningMean: &mean, runningVariance: &variance,
            training: training, momentum: momentum, epsilon: epsilon)
        if training {
            runningMean.value = mean
            runningVariance.value = variance
            batchesTracked.value = Tensor(batchesTracked.value.item + 1)
        }
        return y
    }
}

/// `torch.nn.GroupNorm`.
public final class GroupNorm: UnaryModule {
    public let weight, bias: Parameter
    public let groups: Int
    public let epsilon: Float

    public init(groups: Int, channels: Int, epsilon: Float = 1e-5) {
        weight = Parameter(Tensor(repeating: 1, shape: [channels]))
        bias = Parameter(Tensor(zeros: [channels]))
        self.groups = groups
        self.epsilon = epsilon
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [("weight", weight), ("bias", bias)] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.groupNorm(x, groups: groups, weight: weight.value, bias: bias.value, epsilon: epsilon)
    }

    /// The norm followed by a ReLU, fused when no gradient is recorded.
    public func withReLU(_ x: Tensor) -> Tensor {
        Tensor.groupNorm(x, groups: groups, weight: weight.value, bias: bias.value, epsilon: epsilon, relu: true)
    }
}

/// A function with no parameters as a module (ReLU, pooling, reshapes) for use in ``Sequential``.
public final class Lambda: UnaryModule {
    let body: (Tensor) -> Tensor
    public init(_ body: @escaping (Tensor) -> Tensor) { self.body = body }
    public var namedParameters: [(name: String, parameter: Parameter)] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { body(x) }
}

/// `torch.nn.Sequential`: children applied in order, named "0", "1", … in the state dict.
public final class Sequential: UnaryModule {
    public let layers: [any UnaryModule]

    public init(_ layers: [any UnaryModule]) { self.layers = layers }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        layers.enumerated().flatMap { Self.prefixed(String($0.offset), $0.element) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1($0) }
    }
}
