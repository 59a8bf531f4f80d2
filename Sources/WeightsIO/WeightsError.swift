/// Why a weights file could not be read, naming the file and, where it helps, the byte offset.
public struct WeightsError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var offset: Int?
    public var reason: String

    public init(file: String, offset: Int? = nil, _ reason: String) {
        self.file = file
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        if let offset { return "\(file): at byte \(offset): \(reason)" }
        return "\(file): \(reason)"
    }
}
