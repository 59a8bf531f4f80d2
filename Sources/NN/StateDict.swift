public import Engine

/// Why a state dict does not fit a model: the keys that are missing, unexpected or mis-shaped.
public struct StateDictMismatch: Error, CustomStringConvertible, Sendable {
    public var missing: [String]
    public var unexpected: [String]
    public var misshaped: [(key: String, expected: [Int], found: [Int])]

    public var description: String {
        var parts: [String] = []
        func list(_ keys: [String]) -> String {
            keys.prefix(10).joined(separator: ", ") + (keys.count > 10 ? ", … (\(keys.count) in all)" : "")
        }
        if !missing.isEmpty { parts.append("missing keys: \(list(missing))") }
        if !unexpected.isEmpty { parts.append("unexpected keys: \(list(unexpected))") }
        if !misshaped.isEmpty {
            parts.append(
                "mis-shaped: "
                    + misshaped.prefix(10).map { "\($0.key) expects \($0.expected), file has \($0.found)" }.joined(separator: "; "))
        }
        return "state dict does not fit the model: " + parts.joined(separator: "; ")
    }
}

extension Module {
    /// The model's state dict: every parameter and buffer by name.
    public var stateDict: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters.map { ($0.name, $0.parameter.value.detached()) })
    }

    /// Loads tensors by state-dict name.
    ///
    /// - Parameters:
    ///   - strict: when true, keys of the file that the model lacks are an error too.
    ///   - convert: turns a stored value into a tensor (for example from a safetensors or torch checkpoint).
    /// - Throws: ``StateDictMismatch`` naming every missing, unexpected or mis-shaped key; nothing is loaded then.
    public func load<Value>(_ values: [String: Value], strict: Bool = true, shape: (Value) -> [Int], convert: (Value) -> Tensor) throws {
        let entries = namedParameters
        let known = Set(entries.map(\.name))
        var mismatch = StateDictMismatch(missing: [], unexpected: [], misshaped: [])
        for (name, parameter) in entries {
            guard let value = values[name] else {
                // PyTorch checkpoints from before num_batches_tracked existed lack it; its default is harmless.
                if !name.hasSuffix("num_batches_tracked") { mismatch.missing.append(name) }
                continue
            }
            let found = shape(value)
            // A scalar buffer may be stored as shape [] or [1].
            if found != parameter.shape && !(parameter.shape.isEmpty && found.elementCount == 1) {
                mismatch.misshaped.append((name, parameter.shape, found))
            }
        }
        if strict {
            // torchvision's FrozenBatchNorm2d drops num_batches_tracked when loading; so does a frozen layer here.
            mismatch.unexpected = values.keys.filter { !known.contains($0) && !$0.hasSuffix("num_batches_tracked") }.sorted()
        }
        guard mismatch.missing.isEmpty && mismatch.unexpected.isEmpty && mismatch.misshaped.isEmpty else { throw mismatch }
        for (name, parameter) in entries {
            guard let value = values[name] else { continue }
            parameter.value = convert(value).reshaped(parameter.shape)
        }
    }

    /// Loads float tensors by state-dict name (see ``load(_:strict:shape:convert:)``).
    public func load(_ tensors: [String: Tensor], strict: Bool = true) throws {
        try load(tensors, strict: strict, shape: \.shape, convert: { $0 })
    }
}
