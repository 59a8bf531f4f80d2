public import Engine
import Foundation

/// Reads and writes the safetensors format: an 8-byte little-endian header length, a JSON header that maps
/// names to dtype, shape and byte range, then the data.
public enum SafeTensors {
    /// Hard cap on the JSON header, as the reference implementation (100 MB).
    static let maximumHeaderBytes = 100_000_000

    /// The tensors of a safetensors file, by name, and its `__metadata__`.
    public static func read(contentsOf path: String) throws -> (tensors: [String: StoredTensor], metadata: [String: String]) {
        try read(bytes: try FileBytes.read(path), file: path)
    }

    public static func read(bytes: [UInt8], file: String) throws -> (tensors: [String: StoredTensor], metadata: [String: String]) {
        guard bytes.count >= 8 else {
            throw WeightsError(file: file, offset: 0, "too short for a safetensors header (\(bytes.count) bytes)")
        }
        // Compared as UInt64 before any conversion: a hostile length (2^63, 2^64-1) must not trap.
        let storedLength = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian }
        guard storedLength > 0, storedLength <= UInt64(maximumHeaderBytes), storedLength <= UInt64(bytes.count - 8) else {
            throw WeightsError(
                file: file, offset: 0,
                "header length \(storedLength) does not fit a file of \(bytes.count) bytes (not safetensors, or truncated)")
        }
        let headerLength = Int(storedLength)
        let header: [String: Any]
        do {
            let object = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)]))
            guard let dictionary = object as? [String: Any] else {
                throw WeightsError(file: file, offset: 8, "header is not a JSON object")
            }
            header = dictionary
        } catch let error as WeightsError {
            throw error
        } catch {
            throw WeightsError(file: file, offset: 8, "header is not valid JSON")
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var tensors: [String: StoredTensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any],
                let dtypeName = entry["dtype"] as? String,
                let shape = (entry["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                let offsets = (entry["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                offsets.count == 2
            else { throw WeightsError(file: file, offset: 8, "header entry for '\(name)' lacks dtype, shape or data_offsets") }
            guard let dtype = StoredDType(rawValue: dtypeName) else {
                throw WeightsError(file: file, offset: 8, "tensor '\(name)' has unsupported dtype \(dtypeName)")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw WeightsError(file: file, offset: 8, "tensor '\(name)' has a negative dimension")
            }
            let (start, end) = (offsets[0], offsets[1])
            guard start >= 0, start <= end, end <= dataLength else {
                throw WeightsError(
                    file: file, offset: CheckedSize.add(dataStart, max(start, 0)) ?? dataStart,
                    "tensor '\(name)' spans bytes \(start)..<\(end) of a \(dataLength)-byte data section (truncated?)")
            }
            guard let needed = CheckedSize.byteCount(shape: shape, elementSize: dtype.byteSize) else {
                throw WeightsError(file: file, offset: 8, "tensor '\(name)' has shape \(shape), whose size overflows")
            }
            guard end - start == needed else {
                throw WeightsError(
                    file: file, offset: dataStart + start,
                    "tensor '\(name)' holds \(end - start) bytes, shape \(shape) of \(dtypeName) needs \(needed)")
            }
            tensors[name] = StoredTensor(dtype: dtype, shape: shape, bytes: Array(bytes[(dataStart + start)..<(dataStart + end)]))
        }
        return (tensors, metadata)
    }

    /// Writes float32 tensors (and optional metadata) as a safetensors file, names sorted, atomically.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        try FileBytes.writeAtomically(
            encode(
                tensors.mapValues { tensor in
                    StoredTensor(
                        dtype: .float32, shape: tensor.shape, bytes: tensor.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) })
                }, metadata: metadata), to: path)
    }

    /// The bytes of a safetensors file holding `tensors`.
    public static func encode(_ tensors: [String: StoredTensor], metadata: [String: String] = [:]) throws -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let tensor = tensors[name]!
            let length = tensor.elementCount * tensor.dtype.byteSize
            header[name] =
                ["dtype": tensor.dtype.rawValue, "shape": tensor.shape, "data_offsets": [offset, offset + length]] as [String: Any]
            offset += length
        }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        // Pad the header with spaces so the data section is 8-byte aligned, as the reference writer does.
        while json.count % 8 != 0 { json.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out += json
        for name in names {
            let tensor = tensors[name]!
            out += tensor.bytes.prefix(tensor.elementCount * tensor.dtype.byteSize)
        }
        return out
    }
}
