public import Engine

/// `torch.optim.SGD` with momentum and weight decay (dampening 0, optional Nesterov), with PyTorch's update order.
public struct SGD: Sendable {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public var nesterov: Bool
    /// Momentum buffers by parameter name; saved with checkpoints so training resumes exactly.
    public var momentumBuffers: [String: Tensor] = [:]

    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    /// Updates each named parameter with its gradient (parameters without a gradient are left as they are).
    public mutating func step(_ parameters: [(name: String, parameter: Parameter)], gradients: [String: Tensor]) {
        withoutGradients {
            for (name, parameter) in parameters {
                guard let gradient = gradients[name] else { continue }
                var value = parameter.value.detached()
                precondition(gradient.shape == value.shape, "gradient of \(name) has shape \(gradient.shape), parameter \(value.shape)")
                var direction = weightDecay != 0 ? gradient + value * weightDecay : gradient
                if momentum != 0 {
                    if var buffer = momentumBuffers[name] {
                        buffer = buffer * momentum + direction
                        momentumBuffers[name] = buffer
                        direction = nesterov ? direction + buffer * momentum : buffer
                    } else {
                        momentumBuffers[name] = direction
                        if nesterov { direction = direction + direction * momentum }
                    }
                }
                let scale = -learningRate
                value.withUnsafeMutableBufferPointer { p in
                    direction.withUnsafeBufferPointer { d in
                        for i in 0..<p.count { p[i] += scale * d[i] }
                    }
                }
                parameter.value = value
            }
        }
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales all gradients so their joint L2 norm is at most `maxNorm`.
///
/// - Returns: the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: inout [String: Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for gradient in gradients.values {
        gradient.withUnsafeBufferPointer { g in for v in g { total += Double(v) * Double(v) } }
    }
    let norm = Float(total.squareRoot())
    let coefficient = maxNorm / (norm + 1e-6)
    if coefficient < 1 {
        for key in Array(gradients.keys) { gradients[key] = withoutGradients { gradients[key]! * coefficient } }
    }
    return norm
}

/// A learning-rate schedule: linear warm-up from `warmupFactor` over `warmupIterations`, then the base rate
/// multiplied by `gamma` at each milestone (iterations), as torchvision's detection references.
public struct LearningRateSchedule: Sendable, Codable, Equatable {
    public var baseRate: Float
    public var warmupIterations: Int
    public var warmupFactor: Float
    public var milestones: [Int]
    public var gamma: Float

    public init(baseRate: Float, warmupIterations: Int = 0, warmupFactor: Float = 0.001, milestones: [Int] = [], gamma: Float = 0.1) {
        self.baseRate = baseRate
        self.warmupIterations = warmupIterations
        self.warmupFactor = warmupFactor
        self.milestones = milestones
        self.gamma = gamma
    }

    /// The rate at `iteration` (0-based).
    public func rate(at iteration: Int) -> Float {
        var rate = baseRate
        if iteration < warmupIterations {
            let alpha = Float(iteration) / Float(warmupIterations)
            rate *= warmupFactor * (1 - alpha) + alpha
        }
        for milestone in milestones where iteration >= milestone { rate *= gamma }
        return rate
    }
}
