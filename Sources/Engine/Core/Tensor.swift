/// A dense float32 tensor in row-major (C) order, NCHW for images.
///
/// `Tensor` has value semantics over shared storage: copies are cheap and a write copies the buffer only when
/// it is shared (copy-on-write). A tensor that takes part in differentiation carries a ``GradNode`` that
/// records how it was made; see ``Tensor/requiringGradient()`` and ``gradients(of:withRespectTo:)``.
public struct Tensor: @unchecked Sendable {
    // Sendable: storage is immutable once shared (copy-on-write), and graph nodes are immutable after creation.

    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    @usableFromInline package var storage: TensorStorage
    /// The node of the recorded graph that produced this tensor, or nil when it is not differentiated.
    package var node: GradNode?

    /// A tensor over existing storage. The storage must hold exactly `shape.product` elements.
    package init(shape: [Int], storage: TensorStorage, node: GradNode? = nil) {
        precondition(
            storage.count == shape.elementCount, "storage holds \(storage.count) values, shape \(shape) needs \(shape.elementCount)")
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// A tensor whose values are not initialized; the caller must write every element.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: shape.elementCount))
    }

    /// A tensor filled with zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.init(shape: shape, storage: TensorStorage(zeroedCount: shape.elementCount))
    }

    /// A tensor filled with one value.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitializedShape: shape)
        storage.base.update(repeating: value, count: storage.count)
    }

    /// A tensor with the given values in row-major order.
    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.elementCount, "\(values.count) values for shape \(shape)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { source in
            storage.base.update(from: source.baseAddress!, count: source.count)
        }
    }

    /// A scalar (rank-0) tensor.
    public init(_ value: Float) {
        self.init(shape: [], values: [value])
    }

    /// A tensor whose element `i` (row-major) is `body(i)`.
    public init(shape: [Int], generator body: (Int) -> Float) {
        self.init(uninitializedShape: shape)
        for index in 0..<storage.count { storage.base[index] = body(index) }
    }

    // MARK: - Shape

    public var rank: Int { shape.count }
    public var count: Int { storage.count }

    /// The extent of dimension `axis`; negative axes count from the end.
    public func size(_ axis: Int) -> Int { shape[normalizedAxis(axis)] }

    /// `axis` as a non-negative index, counting negative values from the end.
    public func normalizedAxis(_ axis: Int) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        precondition(resolved >= 0 && resolved < Swift.max(rank, 1), "axis \(axis) out of range for rank \(rank)")
        return resolved
    }

    // MARK: - Values

    /// The values in row-major order.
    public var scalars: [Float] { Array(storage.buffer) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item of a tensor with \(count) elements")
        return storage.base[0]
    }

    /// Calls `body` with the values, read-only.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(storage.buffer))
    }

    /// Calls `body` with the values, writable; copies the storage first if it is shared.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeStorageUnique()
        storage.markWritten()
        return try body(storage.buffer)
    }

    /// Ensures this tensor's storage is not shared with another tensor.
    public mutating func makeStorageUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(uninitializedCount: storage.count)
            copy.base.update(from: storage.base, count: storage.count)
            storage = copy
        }
    }

    /// Element at a multi-dimensional index (slow; for tests and small tensors).
    public subscript(indices: Int...) -> Float {
        get { storage.base[shape.offset(of: indices)] }
        set {
            makeStorageUnique()
            storage.markWritten()
            storage.base[shape.offset(of: indices)] = newValue
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}

extension Array where Element == Int {
    /// The number of elements of a tensor with this shape.
    @inlinable public var elementCount: Int { reduce(1, *) }

    /// Row-major strides of a tensor with this shape.
    public var contiguousStrides: [Int] {
        var strides = [Int](repeating: 1, count: count)
        var running = 1
        for axis in stride(from: count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= self[axis]
        }
        return strides
    }

    func offset(of indices: [Int]) -> Int {
        precondition(indices.count == count, "index \(indices) for shape \(self)")
        var offset = 0
        for (axis, index) in indices.enumerated() {
            precondition(index >= 0 && index < self[axis], "index \(indices) out of bounds for shape \(self)")
            offset = offset * self[axis] + index
        }
        return offset
    }
}
