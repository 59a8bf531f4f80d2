/// A runner failure, naming what and why.
public struct RunnerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
