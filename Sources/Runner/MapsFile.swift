import Detection
import Engine
import Explain
import Foundation
import Vision
import WeightsIO

/// An image's heat maps as the runner stores them (`maps.safetensors`, format `odam-maps/2`): per kept detection and
/// target the raw ODAM map on its feature grid (not normalized, so maps compare across detections), cropped to the
/// rectangle where it exceeds 1/4096 of its maximum and stored as float16 divided by that maximum.
///
/// Tensors are `d{rank}.{target}`, float16 `[rows, columns]`. The safetensors metadata holds `format`, `width` and
/// `height` (the original image), `targets`, and `detections`: a JSON array with, per rank, the box in the image's
/// pixels, the score, the label, the FPN level, the level's `stride` (input pixels per cell, vertical and horizontal),
/// the `grid` (`[rows, columns]`: the level's cells that cover the resized image, padding cells dropped) and per
/// target `{"offset": [row, column], "scale": s}`. The image-resolution map is the grid map (zeros, the crop times
/// `scale` placed at `offset`) resized bilinearly with half-pixel centres (PyTorch's `align_corners=False`) to
/// `[height, width]`: what `odam explain --raw` writes before its min-max normalization. The rebuilt map is within
/// 1/2048 of the map's maximum of the float32 one (float16 rounding plus the cells left out of the crop). The paper's
/// combined map is the pixel-wise maximum of the min-max normalized target maps; it is not stored.
public struct MapsFile: Sendable, Equatable {
    public static let format = "odam-maps/2"
    /// Cells below this share of the map's maximum may lie outside the stored crop.
    public static let cropThreshold: Float = 1.0 / 4096

    /// One target's map: `values` (float16 precision, divided by `scale`) at `offset` on the level's grid.
    public struct CroppedMap: Sendable, Equatable {
        public var row: Int, column: Int, rows: Int, columns: Int
        public var scale: Float
        public var values: [Float]

        public init(row: Int, column: Int, rows: Int, columns: Int, scale: Float, values: [Float]) {
            (self.row, self.column, self.rows, self.columns, self.scale, self.values) = (row, column, rows, columns, scale, values)
        }
    }

    /// A kept detection and its maps.
    public struct Entry: Sendable, Equatable {
        public var box: Box<Float>
        public var score: Float
        public var label: Int
        /// The label's name, when the model names its classes.
        public var labelName: String?
        public var level: Int
        public var stride: (Float, Float)
        public var gridRows: Int, gridColumns: Int
        public var maps: [ExplanationTarget: CroppedMap]

        public static func == (a: Entry, b: Entry) -> Bool {
            a.box == b.box && a.score == b.score && a.label == b.label && a.labelName == b.labelName && a.level == b.level
                && a.stride == b.stride
                && a.gridRows == b.gridRows && a.gridColumns == b.gridColumns && a.maps == b.maps
        }
    }

    public var width: Int
    public var height: Int
    public var targets: [ExplanationTarget]
    public var detections: [Entry]

    public init(width: Int, height: Int, targets: [ExplanationTarget], detections: [Entry]) {
        (self.width, self.height, self.targets, self.detections) = (width, height, targets, detections)
    }

    /// The maps of kept detections (`maps[rank][target]`, as ``DetectorMaps`` makes them) in this format.
    public init(
        image: ImageSize, targets: [ExplanationTarget], detections: [(detection: Detection, level: Int)],
        maps: [[ExplanationTarget: HeatMap]], classNames: ClassNames = ClassNames(names: [])
    ) {
        self.init(width: image.width, height: image.height, targets: targets, detections: [])
        for (rank, (detection, level)) in detections.enumerated() {
            var cropped: [ExplanationTarget: CroppedMap] = [:]
            var grid = (rows: 1, columns: 1)
            var stride: (Float, Float) = (1, 1)
            for target in targets {
                guard let map = maps[rank][target] else { continue }
                grid = (map.raw.shape[0], map.raw.shape[1])
                stride = map.stride ?? (Float(image.height) / Float(grid.rows), Float(image.width) / Float(grid.columns))
                cropped[target] = Self.crop(map.raw)
            }
            self.detections.append(
                Entry(
                    box: detection.box, score: detection.score, label: detection.label,
                    labelName: classNames.names.isEmpty ? nil : classNames.name(of: detection.label), level: level, stride: stride,
                    gridRows: grid.rows, gridColumns: grid.columns, maps: cropped))
        }
    }

    /// The smallest rectangle holding every value above ``cropThreshold`` of the maximum, divided by the maximum and
    /// rounded to float16; an all-zero map is one zero cell.
    static func crop(_ raw: Tensor) -> CroppedMap {
        let (rows, columns) = (raw.shape[0], raw.shape[1])
        let values = raw.scalars
        let maximum = values.max() ?? 0
        guard maximum > 0, maximum.isFinite else { return CroppedMap(row: 0, column: 0, rows: 1, columns: 1, scale: 0, values: [0]) }
        let floor = maximum * cropThreshold
        var (top, left, bottom, right) = (rows, columns, -1, -1)
        for r in 0..<rows {
            for c in 0..<columns where values[r * columns + c] >= floor {
                (top, left, bottom, right) = (min(top, r), min(left, c), max(bottom, r), max(right, c))
            }
        }
        var kept: [Float] = []
        kept.reserveCapacity((bottom - top + 1) * (right - left + 1))
        for r in top...bottom {
            for c in left...right { kept.append(Float(Float16(values[r * columns + c] / maximum))) }
        }
        return CroppedMap(row: top, column: left, rows: bottom - top + 1, columns: right - left + 1, scale: maximum, values: kept)
    }

    // MARK: - Rebuilding

    /// The map on the level's grid (`[rows, columns]`), zero outside the crop.
    public func gridMap(rank: Int, target: ExplanationTarget) throws -> Tensor {
        let (entry, map) = try lookUp(rank: rank, target: target)
        var grid = [Float](repeating: 0, count: entry.gridRows * entry.gridColumns)
        for r in 0..<map.rows {
            for c in 0..<map.columns {
                grid[(map.row + r) * entry.gridColumns + map.column + c] = map.values[r * map.columns + c] * map.scale
            }
        }
        return Tensor(shape: [entry.gridRows, entry.gridColumns], values: grid)
    }

    /// The raw map at the image's resolution (bilinear, half-pixel centres), as `odam explain --raw` before
    /// normalizing; `combined` is the pixel-wise maximum of the normalized target maps.
    public func imageMap(rank: Int, target: String) throws -> Tensor {
        if target == "combined" {
            let parts = try targets.map { try HeatMap(raw: gridMap(rank: rank, target: $0), imageSize: size).normalized }
            guard !parts.isEmpty else { throw RunnerError("the maps file has no targets to combine") }
            return HeatMap.combined(parts)
        }
        guard let parsed = ExplanationTarget(rawValue: target) else {
            throw RunnerError(
                "unknown target '\(target)' (the file has \((targets.map(\.rawValue) + ["combined"]).joined(separator: ", ")))")
        }
        let grid = try gridMap(rank: rank, target: parsed)
        return grid.reshaped([1, 1, grid.shape[0], grid.shape[1]])
            .interpolated(size: (height, width), mode: .bilinear(alignCorners: false)).reshaped([height, width])
    }

    /// The map at the image's resolution, min-max normalized to [0, 1] (what the overlays show).
    public func normalizedMap(rank: Int, target: String) throws -> Tensor {
        let map = try imageMap(rank: rank, target: target)
        return target == "combined" ? map : HeatMap.minMaxNormalized(map)
    }

    var size: ImageSize { ImageSize(height: height, width: width) }

    func lookUp(rank: Int, target: ExplanationTarget) throws -> (Entry, CroppedMap) {
        guard detections.indices.contains(rank) else {
            throw RunnerError("no detection of rank \(rank) (the file has \(detections.count): ranks 0..<\(detections.count))")
        }
        guard let map = detections[rank].maps[target] else {
            throw RunnerError(
                "detection \(rank) has no \(target.rawValue) map (targets: \(targets.map(\.rawValue).joined(separator: ", ")))")
        }
        return (detections[rank], map)
    }
}
