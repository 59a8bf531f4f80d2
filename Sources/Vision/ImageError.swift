/// Why an image could not be read or written: the file and the cause.
public struct ImageError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case unreadable, empty, unknownFormat, corrupt, tooLarge, encoding
    }

    public var file: String
    public var kind: Kind
    public var reason: String

    public init(file: String, kind: Kind, _ reason: String) {
        self.file = file
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}
