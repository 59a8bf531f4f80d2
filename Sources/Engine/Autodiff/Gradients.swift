/// Gradients of a scalar with respect to tensors of its graph (leaves or intermediates).
///
/// - Parameters:
///   - output: the tensor to differentiate; when `seed` is nil it must have one element.
///   - seed: the cotangent of `output` (defaults to 1).
///   - inputs: tensors of the graph that produced `output`.
/// - Returns: one gradient per input, shaped like it (zeros where `output` does not depend on it).
public func gradients(of output: Tensor, seed: Tensor? = nil, withRespectTo inputs: [Tensor]) -> [Tensor] {
    let seedTensor =
        seed
        ?? {
            precondition(output.count == 1, "gradients(of:) needs a scalar or a seed; output has shape \(output.shape)")
            return Tensor(repeating: 1, shape: output.shape)
        }()
    precondition(seedTensor.shape == output.shape, "seed shape \(seedTensor.shape) != output shape \(output.shape)")
    return Backpropagation.run(roots: [(output, seedTensor)], inputs: inputs, seedDimensions: [])
}

/// A batch of vector-Jacobian products in one backward pass.
///
/// `seeds[i]` has shape `[S] + outputs[i].shape`; seed `s` of every output is propagated together, and the result
/// for each input has shape `[S] + input.shape`, holding the `S` products separately. Ops whose pullbacks batch
/// over seeds (convolution, normalization, elementwise) do so in one call; the rest loop over seeds.
public func vectorJacobianProducts(
    of outputs: [Tensor], seeds: [Tensor], withRespectTo inputs: [Tensor]
) -> [Tensor] {
    precondition(outputs.count == seeds.count, "one seed tensor per output")
    precondition(!seeds.isEmpty)
    let seedCount = seeds[0].shape.first ?? 1
    for (output, seed) in zip(outputs, seeds) {
        precondition(seed.shape == [seedCount] + output.shape, "seed shape \(seed.shape) for output \(output.shape)")
    }
    return Backpropagation.run(roots: Array(zip(outputs, seeds)), inputs: inputs, seedDimensions: [seedCount])
}

enum Backpropagation {
    static func run(roots: [(Tensor, Tensor)], inputs: [Tensor], seedDimensions: [Int]) -> [Tensor] {
        withoutGradients {
            let order = topologicalOrder(from: roots.compactMap(\.0.node))
            let wanted = Set(inputs.compactMap { $0.node.map(ObjectIdentifier.init) })

            // A node needs a cotangent when a wanted node lies at or below it.
            var needsCotangent = Set<ObjectIdentifier>()
            for node in order {  // inputs before outputs
                let id = ObjectIdentifier(node)
                if wanted.contains(id) || node.inputs.contains(where: { $0.map { needsCotangent.contains(ObjectIdentifier($0)) } ?? false })
                {
                    needsCotangent.insert(id)
                }
            }

            var cotangents: [ObjectIdentifier: Tensor] = [:]
            for (output, seed) in roots {
                guard let node = output.node else { continue }
                accumulate(seed, into: &cotangents, for: ObjectIdentifier(node))
            }
            var results: [ObjectIdentifier: Tensor] = [:]
            for node in order.reversed() {
                let id = ObjectIdentifier(node)
                guard needsCotangent.contains(id), let cotangent = cotangents[id] else { continue }
                if wanted.contains(id) { results[id] = cotangent }
                guard let pullback = node.pullback else { continue }
                let needed = node.inputs.map { $0.map { needsCotangent.contains(ObjectIdentifier($0)) } ?? false }
                guard needed.contains(true) else { continue }
                cotangents[id] = nil  // the node's cotangent is complete; release it early
                let inputCotangents = apply(pullback, of: node, to: cotangent, needed: needed, seedDimensions: seedDimensions)
                for (input, inputCotangent) in zip(node.inputs, inputCotangents) {
                    guard let input, let inputCotangent, needsCotangent.contains(ObjectIdentifier(input)) else { continue }
                    precondition(
                        inputCotangent.shape == seedDimensions + input.shape,
                        "\(node.name) pullback returned \(inputCotangent.shape) for input \(input.shape)")
                    accumulate(inputCotangent, into: &cotangents, for: ObjectIdentifier(input))
                }
            }
            return inputs.map { input in
                if let node = input.node, let gradient = results[ObjectIdentifier(node)] { return gradient }
                return Tensor(zeros: seedDimensions + input.shape)
            }
        }
    }

    private static func accumulate(_ value: Tensor, into table: inout [ObjectIdentifier: Tensor], for id: ObjectIdentifier) {
        if var existing = table.removeValue(forKey: id) {
            existing.addInPlace(value)
            table[id] = existing
        } else {
            table[id] = value
        }
    }

    private static func apply(
        _ pullback: Pullback, of node: GradNode, to cotangent: Tensor, needed: [Bool], seedDimensions: [Int]
    ) -> [Tensor?] {
        if seedDimensions.isEmpty || node.seedBatched {
            return pullback(cotangent, needed)
        }
        // The op cannot batch seeds: run its pullback once per seed and stack the results.
        let seedCount = seedDimensions[0]
        var perInput = [[Tensor]](repeating: [], count: node.inputs.count)
        for seed in 0..<seedCount {
            let single = cotangent.selecting(index: seed, alongAxis: 0)
            for (index, result) in pullback(single, needed).enumerated() {
                if let result { perInput[index].append(result) }
            }
        }
        return perInput.enumerated().map { index, parts in
            parts.count == seedCount ? Tensor.stacked(parts) : nil
        }
    }

    /// Nodes reachable from `roots`, each after all of its inputs; iterative, so deep graphs cannot overflow the stack.
    static func topologicalOrder(from roots: [GradNode]) -> [GradNode] {
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Int)] = []
        for root in roots where !visited.contains(ObjectIdentifier(root)) {
            visited.insert(ObjectIdentifier(root))
            stack.append((root, 0))
            while let (node, next) = stack.last {
                if next < node.inputs.count {
                    stack[stack.count - 1].1 = next + 1
                    if let input = node.inputs[next], !visited.contains(ObjectIdentifier(input)) {
                        visited.insert(ObjectIdentifier(input))
                        stack.append((input, 0))
                    }
                } else {
                    order.append(node)
                    stack.removeLast()
                }
            }
        }
        return order
    }
}
