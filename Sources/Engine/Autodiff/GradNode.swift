/// Maps the cotangent of an op's output to the cotangents of its inputs.
///
/// `needed[i]` says whether input `i` needs a gradient; the pullback may return nil for the others. When
/// ``GradNode/seedBatched`` is true the cotangent may carry leading seed dimensions in front of the output's
/// shape, and the returned cotangents must carry the same leading dimensions.
package typealias Pullback = (_ cotangent: Tensor, _ needed: [Bool]) -> [Tensor?]

/// One node of the recorded graph: an op's output, or a leaf (a tensor that gradients are taken against).
package final class GradNode: @unchecked Sendable {
    // Sendable: every stored property is immutable after init; pullbacks capture only immutable tensors.
    package let name: String
    package private(set) var inputs: [GradNode?]
    package let pullback: Pullback?
    package let shape: [Int]
    package let seedBatched: Bool

    package init(name: String, inputs: [GradNode?], shape: [Int], seedBatched: Bool = false, pullback: Pullback?) {
        self.name = name
        self.inputs = inputs
        self.shape = shape
        self.seedBatched = seedBatched
        self.pullback = pullback
    }

    /// Releases a long chain of nodes iteratively: the default recursive release of 100k chained nodes would
    /// overflow the stack.
    deinit {
        var pending = inputs.compactMap { $0 }
        inputs = []
        while var node = pending.popLast() {
            if isKnownUniquelyReferenced(&node) {
                pending += node.inputs.compactMap { $0 }
                node.inputs = []
            }
        }
    }

    package var isLeaf: Bool { pullback == nil }
}

/// Whether ops record the graph for differentiation. On by default; see ``withoutGradients(_:)``.
public enum GradMode {
    @TaskLocal package static var isRecording = true
}

/// Runs `body` without recording any op: inference pays nothing for differentiation.
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isRecording.withValue(false, operation: body)
}

extension Tensor {
    /// Whether this tensor takes part in a recorded graph.
    public var requiresGradient: Bool { node != nil }

    /// This tensor as a leaf of the graph, so that gradients can be taken with respect to it.
    public func requiringGradient(_ flag: Bool = true) -> Tensor {
        var copy = self
        copy.node = flag ? GradNode(name: "leaf", inputs: [], shape: shape, pullback: nil) : nil
        return copy
    }

    /// This tensor cut off from the graph (its values, with no gradient flowing back).
    public func detached() -> Tensor {
        var copy = self
        copy.node = nil
        return copy
    }

    /// Whether an op on these inputs must record a node.
    @inline(__always)
    package static func recordsGradient(_ inputs: Tensor...) -> Bool {
        inputs.contains { $0.node != nil } && GradMode.isRecording
    }

    /// Whether an op on these inputs must record a node.
    @inline(__always)
    package static func recordsGradient(_ inputs: [Tensor]) -> Bool {
        inputs.contains { $0.node != nil } && GradMode.isRecording
    }

    /// Attaches a graph node to an op's result.
    package func recorded(
        _ name: String, inputs: [Tensor], seedBatched: Bool = false, pullback: @escaping Pullback
    ) -> Tensor {
        var result = self
        result.node = GradNode(
            name: name, inputs: inputs.map(\.node), shape: shape, seedBatched: seedBatched, pullback: pullback)
        return result
    }
}
