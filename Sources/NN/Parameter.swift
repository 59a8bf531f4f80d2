public import Engine

/// A named, mutable tensor of a model: a trainable parameter or a buffer (such as batch-norm's running mean).
///
/// Layers share their parameters with optimizers and loaders by reference, so a parameter is a class.
public final class Parameter: @unchecked Sendable {
    // Sendable: a model is mutated by one training loop at a time; inference only reads.
    public var value: Tensor
    /// Buffers are saved and loaded with the state dict but never trained.
    public let isBuffer: Bool

    public init(_ value: Tensor, isBuffer: Bool = false) {
        self.value = value
        self.isBuffer = isBuffer
    }

    public var shape: [Int] { value.shape }
}

/// A part of a model whose parameters and buffers are named as in PyTorch's `state_dict`.
public protocol Module: AnyObject {
    /// Parameters and buffers, with names relative to this module (`weight`, `layer1.0.conv1.weight`, …).
    var namedParameters: [(name: String, parameter: Parameter)] { get }
}

extension Module {
    /// The trainable parameters, by state-dict name.
    public var trainableParameters: [(name: String, parameter: Parameter)] {
        namedParameters.filter { !$0.parameter.isBuffer }
    }

    /// A child's parameters under `prefix.` (as PyTorch names submodules).
    public static func prefixed(_ prefix: String, _ module: any Module) -> [(name: String, parameter: Parameter)] {
        module.namedParameters.map { (prefix + "." + $0.name, $0.parameter) }
    }

    /// Marks every trainable parameter as a leaf of the graph, so a forward pass records what gradients need.
    public func beginTrainingStep() {
        for (_, parameter) in trainableParameters { parameter.value = parameter.value.detached().requiringGradient() }
    }

    /// Cuts every parameter off the graph (after a step, and for inference).
    public func endTrainingStep() {
        for (_, parameter) in namedParameters { parameter.value = parameter.value.detached() }
    }
}

/// A module that maps one tensor to one tensor.
public protocol UnaryModule: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}
