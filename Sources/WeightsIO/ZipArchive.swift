/// A reader for the uncompressed ("stored") zip archives that `torch.save` writes, zip64 included.
struct ZipArchive {
    struct Entry {
        var name: String
        var dataOffset: Int
        var size: Int
    }

    let file: String
    let bytes: [UInt8]
    private(set) var entries: [String: Entry] = [:]
    private(set) var names: [String] = []

    init(bytes: [UInt8], file: String) throws {
        self.file = file
        self.bytes = bytes
        try readCentralDirectory()
    }

    static func looksLikeZip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 0x03 && bytes[3] == 0x04
    }

    func data(_ name: String) throws -> ArraySlice<UInt8> {
        guard let entry = entries[name] else { throw WeightsError(file: file, "archive has no entry '\(name)'") }
        return bytes[entry.dataOffset..<(entry.dataOffset + entry.size)]  // in range: checked when the entry was read
    }

    private func u16(_ offset: Int) throws -> Int {
        guard offset >= 0, offset <= bytes.count - 2 else { throw truncated(offset) }
        return Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
    }

    private func u32(_ offset: Int) throws -> Int {
        guard offset >= 0, offset <= bytes.count - 4 else { throw truncated(offset) }
        return (0..<4).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
    }

    private func u64(_ offset: Int) throws -> Int {
        guard offset >= 0, offset <= bytes.count - 8 else { throw truncated(offset) }
        let value = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
        guard value <= UInt64(Int.max) else { throw WeightsError(file: file, offset: offset, "zip field out of range") }
        return Int(value)
    }

    private func truncated(_ offset: Int) -> WeightsError {
        WeightsError(file: file, offset: offset, "zip structure runs past the end of the file (truncated?)")
    }

    private mutating func readCentralDirectory() throws {
        // The end-of-central-directory record sits within the last 64 KiB + 22 bytes.
        var end = -1
        var position = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65_535)
        while position >= lowest {
            if bytes[position] == 0x50, bytes[position + 1] == 0x4B, bytes[position + 2] == 0x05, bytes[position + 3] == 0x06 {
                end = position
                break
            }
            position -= 1
        }
        guard end >= 0 else { throw WeightsError(file: file, "no zip end-of-central-directory record (truncated or not a zip)") }
        var count = try u16(end + 10)
        var directoryOffset = try u32(end + 16)
        if count == 0xFFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: the locator precedes the end record and points at the zip64 end record.
            let locator = end - 20
            guard locator >= 0, try u32(locator) == 0x0706_4B50 else {
                throw WeightsError(file: file, offset: end, "zip64 fields without a zip64 locator")
            }
            let record = try u64(locator + 8)
            guard try u32(record) == 0x0606_4B50 else { throw WeightsError(file: file, offset: record, "bad zip64 end record") }
            count = try u64(record + 32)
            directoryOffset = try u64(record + 48)
        }
        var cursor = directoryOffset
        for _ in 0..<count {
            guard try u32(cursor) == 0x0201_4B50 else {
                throw WeightsError(file: file, offset: cursor, "bad zip central directory entry")
            }
            let method = try u16(cursor + 10)
            var size = try u32(cursor + 20)
            let uncompressed = try u32(cursor + 24)
            let nameLength = try u16(cursor + 28), extraLength = try u16(cursor + 30), commentLength = try u16(cursor + 32)
            var localOffset = try u32(cursor + 42)
            guard nameLength <= bytes.count - 46 - cursor else { throw truncated(cursor) }
            let name = String(decoding: bytes[(cursor + 46)..<(cursor + 46 + nameLength)], as: UTF8.self)
            // Zip64 extra field (id 1): the 0xFFFFFFFF fields in order: uncompressed, compressed, offset.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try u16(extra), length = try u16(extra + 2)
                if id == 1 {
                    var field = extra + 4
                    if uncompressed == 0xFFFF_FFFF { field += 8 }
                    if size == 0xFFFF_FFFF { size = try u64(field); field += 8 }
                    if localOffset == 0xFFFF_FFFF { localOffset = try u64(field) }
                }
                extra += 4 + length
            }
            guard method == 0 else {
                throw WeightsError(
                    file: file, offset: cursor, "entry '\(name)' is compressed (method \(method)); torch.save writes stored entries only")
            }
            guard try u32(localOffset) == 0x0403_4B50 else {
                throw WeightsError(file: file, offset: localOffset, "bad zip local header for '\(name)'")
            }
            // localOffset holds a valid header (checked above), so the sum below stays far from overflow; `size` is
            // compared by subtraction because a zip64 size may be anything up to Int.max.
            let dataOffset = localOffset + 30 + (try u16(localOffset + 26)) + (try u16(localOffset + 28))
            guard dataOffset <= bytes.count, size <= bytes.count - dataOffset else {
                throw WeightsError(
                    file: file, offset: dataOffset, "entry '\(name)' (\(size) bytes) runs past the end of the file (truncated?)")
            }
            entries[name] = Entry(name: name, dataOffset: dataOffset, size: size)
            names.append(name)
            cursor += 46 + nameLength + extraLength + commentLength
        }
    }
}
