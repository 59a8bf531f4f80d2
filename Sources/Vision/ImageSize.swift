/// An image's size in pixels: the one size type of detection, explanation and the runner.
public struct ImageSize: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    /// Pixels in the image.
    public var area: Int { height * width }

    public var description: String { "\(width)x\(height)" }
}
