public import Vision

/// The grid Odam-NMS compares candidate maps on.
public enum CandidateGrid: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The unpadded input divided by this stride (the official code: input/16 for FCOS, input/8 for Faster R-CNN).
    case stride(Int)
    /// The unpadded input scaled so that its short edge has this many cells (the paper's text: 50), aspect kept.
    case shortEdge(Int)

    /// The grid for an unpadded input of `inputSize`, at least one cell a side.
    public func size(inputSize: ImageSize) -> ImageSize {
        switch self {
        case .stride(let stride):
            return ImageSize(height: max(inputSize.height / stride, 1), width: max(inputSize.width / stride, 1))
        case .shortEdge(let cells):
            let scale = Double(cells) / Double(max(min(inputSize.height, inputSize.width), 1))
            return ImageSize(
                height: max(Int((Double(inputSize.height) * scale).rounded()), 1),
                width: max(Int((Double(inputSize.width) * scale).rounded()), 1))
        }
    }

    /// Reads `stride:N` or `short-edge:N` (N from 1 to 1024).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let value = Int(parts[1]), (1...1024).contains(value) else { return nil }
        switch parts[0] {
        case "stride": self = .stride(value)
        case "short-edge": self = .shortEdge(value)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .stride(let stride): "stride:\(stride)"
        case .shortEdge(let cells): "short-edge:\(cells)"
        }
    }
}

/// How Odam-NMS's candidate maps are made: the explained target and the grid they are compared on.
public struct CandidateVariant: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The class logit (the official code) or the confidence score (the paper's text).
    public var target: ExplanationTarget
    /// Nil: the detector's default (``DetectorMaps/candidateGridStride``).
    public var grid: CandidateGrid?

    public init(target: ExplanationTarget = .logit, grid: CandidateGrid? = nil) {
        self.target = target
        self.grid = grid
    }

    /// The official code's choice, which odam uses unless told otherwise.
    public static let standard = CandidateVariant()

    public var description: String { "\(target.rawValue), \(grid.map { "\($0)" } ?? "default grid")" }
}
