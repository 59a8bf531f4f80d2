/// Settings files (job specs, training configs, model specs) decode one way: each key over its default, with
/// unknown keys refused and errors that name the key's path. A type's `init(from:)` calls ``Swift/Decoder/refuseUnknownKeys(_:)``,
/// starts from its defaults and reads each key with ``Swift/KeyedDecodingContainer/value(_:or:)``.

/// Any key of a mapping, to find the ones a section does not know.
public struct AnyCodingKey: CodingKey {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws when the mapping holds a key outside `known`, naming it and the known ones.
    public func refuseUnknownKeys<Key: CodingKey & CaseIterable>(_ known: Key.Type) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let names = Set(Key.allCases.map(\.stringValue))
        for key in container.allKeys where !names.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: codingPath + [key], debugDescription: "unknown key (known: \(names.sorted().joined(separator: ", ")))"))
        }
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent or null.
    public func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T { try decodeIfPresent(T.self, forKey: key) ?? fallback }
}

extension DecodingError {
    /// The error as "'KEY.PATH' must be TYPE" (or the decoder's own words), prefixed by `location` of the key's path
    /// (a YAML line) when one is given.
    public func describedByKey(location: ([any CodingKey]) -> String? = { _ in nil }) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text
        }
        func at(_ codingPath: [any CodingKey]) -> String { location(codingPath).map { " \($0): " } ?? ": " }
        switch self {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let expected = type == Int.self ? "a whole number" : type == String.self ? "a string" : "\(type)"
            return at(context.codingPath) + "'\(path(context.codingPath))' must be \(expected)"
        case .dataCorrupted(let context):
            return at(context.codingPath) + (context.codingPath.isEmpty ? "" : "'\(path(context.codingPath))': ")
                + context.debugDescription
        case .keyNotFound(let key, let context): return at(context.codingPath) + "missing '\(key.stringValue)'"
        @unknown default: return ": \(self)"
        }
    }
}
