public import Vision

/// An axis-aligned box (x1, y1, x2, y2): the one box type of detection, evaluation and the runner. Detections use
/// `Box<Float>` (the network's precision), the crowd metrics `Box<Double>`. It reads as a collection of its four
/// coordinates (`box[0]`, `boxes.flatMap { $0 }`), writes as a literal (`[x1, y1, x2, y2]`) and encodes as that array.
public struct Box<Scalar: BinaryFloatingPoint & Codable & Sendable>: Sendable, Equatable, Hashable {
    public var x1: Scalar, y1: Scalar, x2: Scalar, y2: Scalar

    public init(_ x1: Scalar, _ y1: Scalar, _ x2: Scalar, _ y2: Scalar) { (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2) }

    /// A box from four coordinates (x1, y1, x2, y2).
    public init(_ coordinates: some Collection<Scalar>) {
        let values = Array(coordinates)
        precondition(values.count == 4, "a box has 4 coordinates, not \(values.count)")
        self.init(values[0], values[1], values[2], values[3])
    }

    /// The same box in another precision.
    public init<Other>(_ other: Box<Other>) {
        self.init(Scalar(other.x1), Scalar(other.y1), Scalar(other.x2), Scalar(other.y2))
    }

    public var width: Scalar { x2 - x1 }
    public var height: Scalar { y2 - y1 }
    public var area: Scalar { (x2 - x1) * (y2 - y1) }
}

extension Box: RandomAccessCollection, MutableCollection {
    public var startIndex: Int { 0 }
    public var endIndex: Int { 4 }

    public subscript(position: Int) -> Scalar {
        get {
            switch position {
            case 0: x1
            case 1: y1
            case 2: x2
            case 3: y2
            default: preconditionFailure("box coordinate \(position) of 4")
            }
        }
        set {
            switch position {
            case 0: x1 = newValue
            case 1: y1 = newValue
            case 2: x2 = newValue
            case 3: y2 = newValue
            default: preconditionFailure("box coordinate \(position) of 4")
            }
        }
    }
}

extension Box: ExpressibleByArrayLiteral {
    public init(arrayLiteral coordinates: Scalar...) { self.init(coordinates) }
}

extension Box: Codable {
    public init(from decoder: any Decoder) throws {
        let values = try decoder.singleValueContainer().decode([Scalar].self)
        guard values.count == 4 else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "a box has 4 coordinates, not \(values.count)"))
        }
        self.init(values)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Array(self))
    }
}

extension DetectionTransform {
    /// A box in the resized input's pixels mapped back to the original image's (torchvision's `resize_boxes`).
    public static func boxToOriginal(_ box: Box<Float>, resized: ImageSize, original: ImageSize) -> Box<Float> {
        Box(boxesToOriginal(Array(box), resized: resized, original: original))
    }
}
