import Foundation

/// A COCO-format annotation file: images, categories and instance annotations (boxes, polygons or RLE masks).
public struct COCOAnnotations: Sendable {
    public struct Image: Sendable, Equatable {
        public var id: Int
        public var fileName: String
        public var width: Int
        public var height: Int
        /// odam's synthetic benchmark: `crowd` or `sparse`.
        public var scene: String? = nil
    }

    public enum Segmentation: Sendable, Equatable {
        case polygons([[Float]])
        /// Run-length encoding over the column-major (Fortran order) mask, starting with a run of zeros.
        case runLength(counts: [Int], height: Int, width: Int)
    }

    public struct Annotation: Sendable, Equatable {
        public var id: Int
        public var imageID: Int
        public var categoryID: Int
        /// (x, y, width, height) as in the file.
        public var bbox: [Float]
        public var isCrowd: Bool
        /// CrowdHuman-style ignore regions (`ignore: 1`) and COCO crowds both count as ignore regions.
        public var ignore: Bool
        public var segmentation: Segmentation?
        /// `bbox` in double precision, as the file gives it (evaluation compares IoUs with thresholds exactly).
        public var fileBBox: [Double]
        /// The `area` of the file (COCO: the mask's area), else the box's.
        public var area: Double

        /// (x1, y1, x2, y2).
        public var box: Box<Float> { Box(bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]) }
    }

    public var images: [Image]
    public var categories: [Int: String]
    public var annotations: [Annotation]

    /// The first `count` images and their annotations (all when `count` is nil).
    public func prefix(images count: Int?) -> COCOAnnotations {
        guard let count, count < images.count else { return self }
        var copy = self
        copy.images = Array(images.prefix(max(count, 0)))
        let kept = Set(copy.images.map(\.id))
        copy.annotations = annotations.filter { kept.contains($0.imageID) }
        return copy
    }

    /// Annotations by image id.
    public func annotations(forImage id: Int) -> [Annotation] { annotations.filter { $0.imageID == id } }

    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read the annotation file") }
        try self.init(data: data, file: path)
    }

    public init(data: Data, file: String) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError("\(file): not a JSON object (COCO annotations have images, annotations and categories)")
        }
        func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }
        // Ids and sizes come from the file: a whole number within ±2^53, or an error naming the field (Int(1e300) traps).
        func integer(_ value: Any?, _ field: @autoclosure () -> String) throws -> Int? {
            guard let value = number(value) else { return nil }
            guard value.rounded() == value, abs(value) <= 9_007_199_254_740_992 else {
                throw ModelError("\(file): \(field()) is \(value), not a whole number in range")
            }
            return Int(value)
        }
        images = try (root["images"] as? [[String: Any]] ?? []).enumerated().map { index, image in
            guard let id = try integer(image["id"], "images[\(index)].id"), let name = image["file_name"] as? String else {
                throw ModelError("\(file): images[\(index)] lacks id or file_name")
            }
            return Image(
                id: id, fileName: name, width: try integer(image["width"], "images[\(index)].width") ?? 0,
                height: try integer(image["height"], "images[\(index)].height") ?? 0, scene: image["scene"] as? String)
        }
        var names: [Int: String] = [:]
        for (index, category) in (root["categories"] as? [[String: Any]] ?? []).enumerated() {
            if let id = try integer(category["id"], "categories[\(index)].id") { names[id] = category["name"] as? String ?? "\(id)" }
        }
        categories = names
        annotations = try (root["annotations"] as? [[String: Any]] ?? []).enumerated().map { index, entry in
            guard let imageID = try integer(entry["image_id"], "annotations[\(index)].image_id"),
                let bbox = (entry["bbox"] as? [Any])?.compactMap({ number($0) }), bbox.count == 4, bbox.allSatisfy(\.isFinite)
            else { throw ModelError("\(file): annotations[\(index)] lacks image_id or a 4-number bbox") }
            var segmentation: Segmentation? = nil
            if let polygons = entry["segmentation"] as? [[Any]] {
                segmentation = .polygons(polygons.map { $0.compactMap { number($0).map(Float.init) } })
            } else if let rle = entry["segmentation"] as? [String: Any], let size = rle["size"] as? [Any], size.count == 2 {
                guard let height = try integer(size[0], "annotations[\(index)].segmentation.size"),
                    let width = try integer(size[1], "annotations[\(index)].segmentation.size"),
                    (0...100_000).contains(height), (0...100_000).contains(width)
                else { throw ModelError("\(file): annotations[\(index)].segmentation.size must be two sizes of at most 100000") }
                var counts: [Int] = []
                if let list = rle["counts"] as? [Any] {
                    counts = try list.map { try integer($0, "annotations[\(index)].segmentation.counts") ?? -1 }
                } else if let text = rle["counts"] as? String {
                    counts = try Self.decodeCompressedCounts(text, file: file)
                }
                guard counts.allSatisfy({ $0 >= 0 }) else {
                    throw ModelError("\(file): annotations[\(index)].segmentation.counts holds a negative or missing count")
                }
                segmentation = .runLength(counts: counts, height: height, width: width)
            }
            let crowd = (number(entry["iscrowd"]) ?? 0) != 0
            return Annotation(
                id: try integer(entry["id"], "annotations[\(index)].id") ?? index + 1, imageID: imageID,
                categoryID: try integer(entry["category_id"], "annotations[\(index)].category_id") ?? 1,
                bbox: bbox.map(Float.init), isCrowd: crowd, ignore: crowd || (number(entry["ignore"]) ?? 0) != 0,
                segmentation: segmentation,
                fileBBox: bbox, area: number(entry["area"]) ?? bbox[2] * bbox[3])
        }
    }

    /// The compressed RLE string of the COCO API (`rleFrString`): 6-bit groups with a continuation bit, counts after
    /// the second stored as differences from the count two before.
    static func decodeCompressedCounts(_ text: String, file: String) throws -> [Int] {
        let bytes = Array(text.utf8)
        var counts: [Int] = []
        var position = 0
        while position < bytes.count {
            var value = 0, shift = 0, more = true
            while more {
                guard position < bytes.count else { throw ModelError("\(file): truncated compressed RLE") }
                guard shift <= 55 else { throw ModelError("\(file): a compressed RLE count at byte \(position) is too long") }
                let c = Int(bytes[position]) - 48
                value |= (c & 0x1f) << shift
                more = c & 0x20 != 0
                position += 1
                shift += 5
                if !more && c & 0x10 != 0 { value |= -1 << shift }
            }
            if counts.count > 2 {
                let (sum, overflow) = value.addingReportingOverflow(counts[counts.count - 2])
                guard !overflow else { throw ModelError("\(file): a compressed RLE count at byte \(position) overflows") }
                value = sum
            }
            counts.append(value)
        }
        return counts
    }

    /// The annotation's mask as row-major booleans of the image's size (polygons rasterized, RLE decoded).
    public static func mask(_ segmentation: Segmentation, height: Int, width: Int) -> [Bool] {
        switch segmentation {
        case .polygons(let polygons):
            return rasterize(polygons, height: height, width: width)
        case .runLength(let counts, let h, let w):
            var columnMajor = [Bool](repeating: false, count: h * w)
            var position = 0, value = false
            for count in counts where position < columnMajor.count {
                let end = min(columnMajor.count, position + min(max(count, 0), columnMajor.count))
                for i in position..<end { columnMajor[i] = value }
                position = end
                value.toggle()
            }
            var mask = [Bool](repeating: false, count: height * width)
            for y in 0..<min(h, height) { for x in 0..<min(w, width) { mask[y * width + x] = columnMajor[x * h + y] } }
            return mask
        }
    }

    /// Polygon rasterization by ray casting at (x + offset, y + offset) of each pixel; with `truncatingVertices` the
    /// vertices are cut to integers first (as the official ODAM evaluation feeds `cv2.fillPoly`).
    public static func rasterize(
        _ polygons: [[Float]], height: Int, width: Int, truncatingVertices: Bool = false, sampleOffset: Float = 0.5
    ) -> [Bool] {
        var mask = [Bool](repeating: false, count: height * width)
        for polygon in polygons where polygon.count >= 6 {
            let vertices = truncatingVertices ? polygon.map { Float(Int($0)) } : polygon
            let xs = stride(from: 0, to: vertices.count - 1, by: 2).map { vertices[$0] }
            let ys = stride(from: 1, to: vertices.count, by: 2).map { vertices[$0] }
            for y in 0..<height {
                let py = Float(y) + sampleOffset
                for x in 0..<width {
                    let px = Float(x) + sampleOffset
                    var inside = false
                    var j = xs.count - 1
                    for i in 0..<xs.count {
                        if (ys[i] > py) != (ys[j] > py), px < (xs[j] - xs[i]) * (py - ys[i]) / (ys[j] - ys[i]) + xs[i] { inside.toggle() }
                        j = i
                    }
                    if inside { mask[y * width + x] = true }
                }
            }
        }
        return mask
    }
}
