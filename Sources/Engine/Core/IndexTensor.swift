/// A dense tensor of integer indices, as ops such as gather, scatter-add and top-k use them.
public struct IndexTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Int]

    public init(shape: [Int], values: [Int]) {
        precondition(values.count == shape.elementCount, "\(values.count) indices for shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// A rank-1 index tensor.
    public init(_ values: [Int]) {
        self.init(shape: [values.count], values: values)
    }

    public var count: Int { values.count }
    public var rank: Int { shape.count }
}
