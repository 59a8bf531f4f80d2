/// Reads PyTorch checkpoints written by `torch.save` (the zip format of PyTorch 1.6 and later), natively.
public enum TorchCheckpoint {
    /// Keys under which training scripts commonly wrap a state dict.
    static let wrapperKeys = ["model", "state_dict", "model_state_dict", "module", "net", "ema"]

    /// The tensors of the state dict in `path`, by their state-dict keys.
    ///
    /// A checkpoint that wraps the state dict (`{"model": state_dict, "optimizer": ...}`) yields the wrapped state
    /// dict; other nested dicts are flattened with dotted keys. Non-tensor entries are skipped.
    public static func read(contentsOf path: String) throws -> [String: StoredTensor] {
        try read(bytes: try FileBytes.read(path), file: path)
    }

    public static func read(bytes: [UInt8], file: String) throws -> [String: StoredTensor] {
        guard ZipArchive.looksLikeZip(bytes) else {
            if bytes.first == 0x80 {
                throw WeightsError(file: file, offset: 0, "a legacy (pre-1.6, non-zip) torch file; re-save it with a current torch.save")
            }
            throw WeightsError(file: file, offset: 0, "not a PyTorch checkpoint (no zip signature)")
        }
        let archive = try ZipArchive(bytes: bytes, file: file)
        guard let pickleName = archive.names.first(where: { $0.hasSuffix("data.pkl") }) else {
            throw WeightsError(file: file, "zip archive has no data.pkl: not a torch.save checkpoint")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = try? archive.data(prefix + "byteorder"), String(decoding: order, as: UTF8.self) != "little" {
            throw WeightsError(file: file, "checkpoint is big-endian, which odam does not read")
        }
        var machine = PickleMachine(bytes: try archive.data(pickleName), file: file + ":" + pickleName) { key in
            guard key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw WeightsError(file: file, "storage key '\(key)' is not a plain name")
            }
            return Array(try archive.data(prefix + "data/" + key))
        }
        defer { machine.releaseContainers() }
        let root = try machine.run()
        guard case .dict(let dictionary) = root else {
            throw WeightsError(file: file, "checkpoint holds a \(root.typeName), not a dict of tensors")
        }
        var flat: [String: StoredTensor] = [:]
        try flatten(dictionary, prefix: "", path: [], into: &flat, file: file)
        if flat.isEmpty { throw WeightsError(file: file, "checkpoint holds no tensors") }
        return unwrapped(flat, dictionary)
    }

    /// Nested dicts deeper than this are refused: real checkpoints nest a few levels, hostile ones millions.
    static let maximumNesting = 64

    private static func flatten(
        _ dictionary: PickleDict, prefix: String, path: [ObjectIdentifier], into out: inout [String: StoredTensor], file: String
    ) throws {
        guard path.count < maximumNesting else {
            throw WeightsError(file: file, "dicts nested deeper than \(maximumNesting) levels at '\(prefix.prefix(80))…'")
        }
        guard !path.contains(ObjectIdentifier(dictionary)) else {
            throw WeightsError(file: file, "the dict at '\(prefix)' contains itself")
        }
        for (key, value) in dictionary.items {
            guard case .string(let name) = key else { continue }
            switch value {
            case .tensor(let tensor): out[prefix + name] = tensor
            case .dict(let nested):
                try flatten(nested, prefix: prefix + name + ".", path: path + [ObjectIdentifier(dictionary)], into: &out, file: file)
            default: continue
            }
        }
    }

    /// When the top level holds no tensors itself but a wrapper key does, returns that wrapper's tensors.
    private static func unwrapped(_ flat: [String: StoredTensor], _ root: PickleDict) -> [String: StoredTensor] {
        let topLevelTensors = root.items.contains { if case .tensor = $0.value { return true } else { return false } }
        if topLevelTensors { return flat }
        for key in wrapperKeys where root.items.contains(where: { if case .string(key) = $0.key { return true } else { return false } }) {
            let wrapped = flat.filter { $0.key.hasPrefix(key + ".") }
            if !wrapped.isEmpty {
                return Dictionary(uniqueKeysWithValues: wrapped.map { (String($0.key.dropFirst(key.count + 1)), $0.value) })
            }
        }
        return flat
    }
}

/// Reads either weights format by its content.
public enum WeightsFile {
    /// The tensors of a safetensors file or a torch.save checkpoint.
    public static func read(contentsOf path: String) throws -> [String: StoredTensor] {
        try read(bytes: try FileBytes.read(path), file: path)
    }

    public static func read(bytes: [UInt8], file: String) throws -> [String: StoredTensor] {
        if ZipArchive.looksLikeZip(bytes) || bytes.first == 0x80 { return try TorchCheckpoint.read(bytes: bytes, file: file) }
        if bytes.count < 8 {
            throw WeightsError(file: file, offset: 0, "file of \(bytes.count) bytes is neither safetensors nor a torch checkpoint")
        }
        return try SafeTensors.read(bytes: bytes, file: file).tensors
    }
}
