import Detection
import Engine
import Explain
import Foundation
import WeightsIO

extension MapsFile {
    /// The `detections` metadata entry of one rank.
    struct EntryMetadata: Codable {
        var box: [Float]
        var score: Float
        var label: Int
        var labelName: String?
        var level: Int
        var stride: [Float]
        var grid: [Int]
        var maps: [String: MapMetadata]
    }

    struct MapMetadata: Codable {
        var offset: [Int]
        var scale: Float
    }

    /// Bounds a hostile file cannot make us exceed: cells of one grid, detections per image, pixels per image.
    static let maximumGridCells = 1 << 24
    static let maximumDetections = 100_000
    static let maximumPixels = 1 << 31

    /// How to rebuild a map, for readers who find the file without the documentation.
    static let recipe =
        "d{rank}.{target}: float16 crop of the raw map on its feature grid, divided by scale. Rebuild: zeros(grid); "
        + "grid[offset[0]:, offset[1]:][:rows, :columns] = crop * scale; resize bilinearly (align_corners=False) to "
        + "[height, width]. combined = pixel-wise max of the min-max normalized target maps."

    /// The file's bytes: safetensors with float16 tensors and the metadata described on ``MapsFile``.
    public func encoded() throws -> [UInt8] {
        var tensors: [String: StoredTensor] = [:]
        var entries: [EntryMetadata] = []
        for (rank, entry) in detections.enumerated() {
            var maps: [String: MapMetadata] = [:]
            for (target, map) in entry.maps {
                maps[target.rawValue] = MapMetadata(offset: [map.row, map.column], scale: map.scale)
                var bytes: [UInt8] = []
                bytes.reserveCapacity(2 * map.values.count)
                for value in map.values {
                    let bits = Float16(value).bitPattern
                    bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8)]
                }
                tensors["d\(rank).\(target.rawValue)"] = StoredTensor(dtype: .float16, shape: [map.rows, map.columns], bytes: bytes)
            }
            entries.append(
                EntryMetadata(
                    box: [entry.box.x1, entry.box.y1, entry.box.x2, entry.box.y2], score: entry.score, label: entry.label,
                    labelName: entry.labelName, level: entry.level, stride: [entry.stride.0, entry.stride.1],
                    grid: [entry.gridRows, entry.gridColumns],
                    maps: maps))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = String(decoding: try encoder.encode(entries), as: UTF8.self)
        return try SafeTensors.encode(
            tensors,
            metadata: [
                "format": Self.format, "width": String(width), "height": String(height),
                "targets": targets.map(\.rawValue).joined(separator: ","), "detections": json, "recipe": Self.recipe,
            ])
    }

    /// Reads a maps file, checking every size and offset against the others; `file` names it in errors.
    public init(bytes: [UInt8], file: String) throws {
        let (tensors, metadata) = try SafeTensors.read(bytes: bytes, file: file)
        func fail(_ reason: String) -> RunnerError { RunnerError("\(file): \(reason)") }
        guard let format = metadata["format"], format == Self.format else {
            throw fail(
                "not an odam maps file of format \(Self.format) (format: \(metadata["format"] ?? "none"); files written before "
                    + "odam-maps/2 hold normalized uint8 maps at the image's size, readable with any safetensors reader)")
        }
        guard let width = metadata["width"].flatMap({ Int($0) }), let height = metadata["height"].flatMap({ Int($0) }), width > 0,
            height > 0, width.multipliedReportingOverflow(by: height).partialValue <= Self.maximumPixels,
            !width.multipliedReportingOverflow(by: height).overflow
        else { throw fail("width and height are missing, not positive or too large") }
        let targetNames = (metadata["targets"] ?? "").split(separator: ",").map(String.init)
        let targets = try targetNames.map { name -> ExplanationTarget in
            guard let target = ExplanationTarget(rawValue: name) else { throw fail("unknown target '\(name)'") }
            return target
        }
        let entries: [EntryMetadata]
        do {
            entries = try JSONDecoder().decode([EntryMetadata].self, from: Data((metadata["detections"] ?? "").utf8))
        } catch {
            throw fail("the detections metadata is not a list of detections (\(error))")
        }
        guard entries.count <= Self.maximumDetections else { throw fail("\(entries.count) detections is more than a file may hold") }
        var detections: [Entry] = []
        for (rank, entry) in entries.enumerated() {
            guard entry.box.count == 4, entry.stride.count == 2, entry.stride.allSatisfy({ $0.isFinite && $0 > 0 }), entry.grid.count == 2,
                entry.grid.allSatisfy({ $0 > 0 }),
                entry.grid[0].multipliedReportingOverflow(by: entry.grid[1]).partialValue <= Self.maximumGridCells,
                !entry.grid[0].multipliedReportingOverflow(by: entry.grid[1]).overflow
            else { throw fail("detection \(rank): box, stride or grid malformed") }
            var maps: [ExplanationTarget: CroppedMap] = [:]
            for (name, map) in entry.maps {
                let tensorName = "d\(rank).\(name)"
                guard let target = ExplanationTarget(rawValue: name), targets.contains(target) else {
                    throw fail("\(tensorName): target not among the file's targets")
                }
                guard let tensor = tensors[tensorName], tensor.dtype == .float16, tensor.shape.count == 2,
                    tensor.shape.allSatisfy({ $0 > 0 })
                else { throw fail("\(tensorName): missing, or not a float16 [rows, columns] tensor") }
                guard map.offset.count == 2, map.offset.allSatisfy({ $0 >= 0 }), map.offset[0] <= entry.grid[0] - tensor.shape[0],
                    map.offset[1] <= entry.grid[1] - tensor.shape[1], map.scale.isFinite, map.scale >= 0
                else {
                    throw fail("\(tensorName): crop \(tensor.shape) at \(map.offset) does not fit the grid \(entry.grid), or bad scale")
                }
                let values = tensor.floatTensor().scalars
                guard values.allSatisfy(\.isFinite) else { throw fail("\(tensorName): values are not finite") }
                maps[target] = CroppedMap(
                    row: map.offset[0], column: map.offset[1], rows: tensor.shape[0], columns: tensor.shape[1], scale: map.scale,
                    values: values)
            }
            detections.append(
                Entry(
                    box: Box(entry.box), score: entry.score, label: entry.label, labelName: entry.labelName, level: entry.level,
                    stride: (entry.stride[0], entry.stride[1]),
                    gridRows: entry.grid[0], gridColumns: entry.grid[1], maps: maps))
        }
        self.init(width: width, height: height, targets: targets, detections: detections)
    }
}
