public import Engine

#if canImport(Glibc)
    import Glibc
#endif

/// The element types a weights file may hold.
public enum StoredDType: String, Sendable, CaseIterable {
    case float32 = "F32", float16 = "F16", bfloat16 = "BF16", float64 = "F64"
    case int64 = "I64", int32 = "I32", int16 = "I16", int8 = "I8", uint8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .int8, .uint8, .bool: 1
        }
    }
}

/// One tensor as stored in a file: element type, shape, strides and its raw little-endian bytes.
public struct StoredTensor: Sendable {
    public var dtype: StoredDType
    public var shape: [Int]
    /// Element strides; contiguous row-major unless the file says otherwise (PyTorch checkpoints may).
    public var strides: [Int]
    /// The bytes of the whole underlying storage, starting at the tensor's first element.
    public var bytes: [UInt8]

    public init(dtype: StoredDType, shape: [Int], strides: [Int]? = nil, bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.strides = strides ?? shape.contiguousStrides
        self.bytes = bytes
    }

    public var elementCount: Int { shape.elementCount }

    /// Reads element `i` of the storage (a storage index, not a logical one) as a double.
    private func element(at index: Int) -> Double {
        bytes.withUnsafeBytes { raw in
            let offset = index * dtype.byteSize
            switch dtype {
            case .float32: return Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case .float64: return Double(bitPattern: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            case .float16: return Double(Float(float16Bits: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            case .bfloat16: return Double(Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) << 16))
            case .int64: return Double(raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
            case .int32: return Double(raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))
            case .int16: return Double(raw.loadUnaligned(fromByteOffset: offset, as: Int16.self))
            case .int8: return Double(raw.load(fromByteOffset: offset, as: Int8.self))
            case .uint8, .bool: return Double(raw.load(fromByteOffset: offset, as: UInt8.self))
            }
        }
    }

    /// Storage indices of the logical elements in row-major order.
    private var storageIndices: [Int] {
        if strides == shape.contiguousStrides { return Array(0..<elementCount) }
        var result: [Int] = []
        result.reserveCapacity(elementCount)
        forEachIndex(shape) { _, position in
            result.append(zip(position, strides).map(*).reduce(0, +))
        }
        return result
    }

    /// The values as a float32 tensor. float32 data is copied bit for bit; other types are converted.
    public func floatTensor() -> Tensor {
        if dtype == .float32 && strides == shape.contiguousStrides {
            var tensor = Tensor(uninitializedShape: shape)
            tensor.withUnsafeMutableBufferPointer { out in
                bytes.withUnsafeBytes { raw in
                    _ = memcpy(out.baseAddress!, raw.baseAddress!, elementCount * 4)
                }
            }
            return tensor
        }
        let indices = storageIndices
        return Tensor(shape: shape) { Float(element(at: indices[$0])) }
    }

    /// The values as integers (for index tensors and counters such as `num_batches_tracked`).
    public func integers() -> [Int] {
        storageIndices.map { Int(element(at: $0)) }
    }
}

extension Float {
    /// Converts IEEE half-precision bits.
    init(float16Bits bits: UInt16) {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            // Subnormal or zero: value = mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign != 0 ? -magnitude : magnitude
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
        }
    }
}
