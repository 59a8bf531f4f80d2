public import Detection
public import Engine
import Foundation
public import Vision

/// Writes heat maps to disk: per image a folder with `index.json`, an 8-bit gray PNG and a color overlay PNG per
/// map (the detection's box, class name and score drawn on it), and with `raw` the float32 maps as `.npy` (feature
/// grid and image resolution).
public struct ExplanationWriter {
    public var directory: String
    public var writesRaw: Bool
    /// The names overlays and `index.json` give the labels.
    public var classNames: ClassNames

    public init(directory: String, writesRaw: Bool = false, classNames: ClassNames = ClassNames(names: [])) {
        self.directory = directory
        self.writesRaw = writesRaw
        self.classNames = classNames
    }

    /// A file-name-safe form of `text`: letters, digits, '.', '_' and '-' only, no leading dot.
    public static func sanitized(_ text: String) -> String {
        let mapped = String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        let trimmed = mapped.drop { $0 == "." }
        return trimmed.isEmpty ? "image" : String(trimmed)
    }

    /// Writes one image's explanations; returns the folder written.
    @discardableResult
    public func write(
        imagePath: String, folderName: String, image: RGBImage, detections: [(detection: Detection, candidate: Candidate)],
        maps: [[ExplanationTarget: HeatMap]], targets: [ExplanationTarget], includesCombined: Bool
    ) throws -> String {
        let folder = directory + "/" + Self.sanitized(folderName)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var entries: [[String: Any]] = []
        for (index, (detection, candidate)) in detections.enumerated() {
            let caption = Self.caption(labelName: classNames.name(of: detection.label), score: detection.score)
            var files: [String: [String: String]] = [:]
            var all = maps[index].map { ($0.key.rawValue, $0.value.normalized, Optional($0.value.raw)) }
            if includesCombined, !maps[index].isEmpty {
                all.append(("combined", HeatMap.combined(all.map(\.1)), nil))
            }
            for (name, normalized, raw) in all.sorted(by: { $0.0 < $1.0 }) {
                let stem = "prediction\(index)_\(name)"
                let gray = normalized.scalars.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
                try write(
                    ImageCodec.encodePNG(pixels: gray, width: image.width, height: image.height, channels: 1), to: folder + "/\(stem).png")
                try write(
                    ImageCodec.encodePNG(
                        pixels: Self.overlay(image, normalized, box: detection.box, caption: caption), width: image.width,
                        height: image.height, channels: 3),
                    to: folder + "/\(stem)_overlay.png")
                var record = ["map": "\(stem).png", "overlay": "\(stem)_overlay.png"]
                if writesRaw {
                    try write(NumpyFile.encode(normalized), to: folder + "/\(stem).npy")
                    record["npy"] = "\(stem).npy"
                    if let raw {
                        try write(NumpyFile.encode(raw), to: folder + "/\(stem)_grid.npy")
                        record["gridNpy"] = "\(stem)_grid.npy"
                    }
                }
                files[name] = record
            }
            entries.append([
                "index": index, "box": detection.box.map(Double.init), "score": Double(detection.score), "label": detection.label,
                "label_name": classNames.name(of: detection.label),
                "level": candidate.level, "anchor": ["row": candidate.row, "column": candidate.column, "anchor": candidate.anchor],
                "maps": files,
            ])
        }
        let index: [String: Any] = [
            "image": imagePath, "width": image.width, "height": image.height, "targets": targets.map(\.rawValue), "predictions": entries,
        ]
        let data = try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try write(Array(data), to: folder + "/index.json")
        return folder
    }

    private func write(_ bytes: [UInt8], to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw CocoaLikeError("\(path): cannot write (directory missing, read-only or disk full?)")
        }
    }

    /// A detection's caption on overlays: its class name and score, "person 0.93".
    public static func caption(labelName: String, score: Float) -> String {
        "\(labelName) " + String(format: "%.2f", score)
    }

    /// The overlay with the detection's box outlined and its caption above it.
    public static func overlay(_ image: RGBImage, _ map: Tensor, box: Box<Float>, caption: String) -> [UInt8] {
        var overlaid = RGBImage(width: image.width, height: image.height, pixels: overlay(image, map))
        overlaid.annotate(box: (box.x1, box.y1, box.x2, box.y2), caption: caption)
        return overlaid.pixels
    }

    /// The image with the jet-colored map (``jet(_:)``) blended over it, half and half.
    public static func overlay(_ image: RGBImage, _ map: Tensor) -> [UInt8] {
        let colors = jet(map)
        return (0..<colors.count).map { UInt8((Float(image.pixels[$0]) * 0.5 + Float(colors[$0]) * 0.5).rounded()) }
    }

    /// A normalized map as RGB pixels of the jet color map. For a value v in [0, 1]: red clamp(1.5 − |4v − 3|), green
    /// clamp(1.5 − |4v − 2|), blue clamp(1.5 − |4v − 1|): dark blue at 0, cyan, green at 0.5, yellow, dark red at 1,
    /// as matplotlib's and OpenCV's jet.
    public static func jet(_ map: Tensor) -> [UInt8] {
        let values = map.scalars
        var out = [UInt8](repeating: 0, count: 3 * values.count)
        for i in 0..<values.count {
            let v = max(0, min(1, values[i]))
            for (c, center) in [Float(3), 2, 1].enumerated() {
                out[3 * i + c] = UInt8((max(0, min(1, 1.5 - abs(4 * v - center))) * 255).rounded())
            }
        }
        return out
    }
}

/// An error with a message for the user.
public struct CocoaLikeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// NumPy `.npy` (format 1.0) files of float32 arrays, readable with `numpy.load`.
public enum NumpyFile {
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let shape = tensor.shape.map(String.init).joined(separator: ", ") + (tensor.rank == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape)), }"
        // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        tensor.withUnsafeBufferPointer { bytes += Array(UnsafeRawBufferPointer($0)) }
        return bytes
    }
}
