import Foundation

/// CrowdHuman's `.odgt` files: one JSON record per line.
///
/// Annotations: `{"ID": …, "gtboxes": [{"tag": "person" | "mask", "fbox": [x, y, w, h], "vbox": …, "hbox": …,
/// "extra": {"ignore": 0 | 1}}]}`; a `mask` tag or `extra.ignore` marks an ignore region. The full-body box
/// (`fbox`) is the one evaluated. Detections, as CrowdDet writes them: `{"ID": …, "width": …, "height": …,
/// "dtboxes": [{"box": [x, y, w, h], "score": …, "tag": 1}]}`, as JSON lines or one JSON array.
public enum CrowdHumanFile {
    public struct Annotations: Sendable {
        public var id: String
        public var boxes: [Box<Double>]
        public var ignored: [Bool]
    }

    public struct Detections: Sendable {
        public var id: String
        public var width: Int
        public var height: Int
        public var boxes: [Box<Double>]
        public var scores: [Double]
    }

    /// The JSON objects of a file of JSON lines or of one JSON array.
    static func records(_ path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read the file") }
        let text = String(decoding: data, as: UTF8.self)
        if text.drop(while: \.isWhitespace).first == "[" {
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
                throw ModelError("\(path): not a JSON array of records")
            }
            return array
        }
        var records: [[String: Any]] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            guard let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw ModelError("\(path):\(number + 1): not a JSON object")
            }
            records.append(record)
        }
        return records
    }

    static func box(_ value: Any?, _ place: String) throws -> Box<Double> {
        guard let numbers = (value as? [Any])?.compactMap({ ($0 as? NSNumber)?.doubleValue }), numbers.count == 4 else {
            throw ModelError("\(place): a box must be 4 numbers [x, y, w, h]")
        }
        return Box<Double>(numbers[0], numbers[1], numbers[0] + numbers[2], numbers[1] + numbers[3])
    }

    /// Reads an `.odgt` annotation file; `personTag` is the tag of the objects to find (others are ignore regions).
    public static func readAnnotations(contentsOf path: String, personTag: String = "person") throws -> [Annotations] {
        try records(path).enumerated().map { index, record in
            guard let id = record["ID"] as? String, let entries = record["gtboxes"] as? [[String: Any]] else {
                throw ModelError("\(path): record \(index + 1) lacks ID or gtboxes")
            }
            var result = Annotations(id: id, boxes: [], ignored: [])
            for (k, entry) in entries.enumerated() {
                result.boxes.append(try box(entry["fbox"], "\(path): \(id) gtboxes[\(k)].fbox"))
                let extraIgnore = ((entry["extra"] as? [String: Any])?["ignore"] as? NSNumber)?.intValue ?? 0
                result.ignored.append((entry["tag"] as? String) != personTag || extraIgnore != 0)
            }
            return result
        }
    }

    /// Reads detections in CrowdDet's format.
    public static func readDetections(contentsOf path: String) throws -> [Detections] {
        try records(path).enumerated().map { index, record in
            guard let id = record["ID"] as? String, let width = (record["width"] as? NSNumber)?.intValue,
                let height = (record["height"] as? NSNumber)?.intValue, let entries = record["dtboxes"] as? [[String: Any]]
            else { throw ModelError("\(path): record \(index + 1) lacks ID, width, height or dtboxes") }
            var result = Detections(id: id, width: width, height: height, boxes: [], scores: [])
            for (k, entry) in entries.enumerated() {
                result.boxes.append(try box(entry["box"], "\(path): \(id) dtboxes[\(k)].box"))
                guard let score = (entry["score"] as? NSNumber)?.doubleValue else {
                    throw ModelError("\(path): \(id) dtboxes[\(k)] lacks a score")
                }
                result.scores.append(score)
            }
            return result
        }
    }

    /// Pairs annotations with detections by ID into images for ``CrowdEvaluation``; an annotated image without
    /// detections counts with none (its size is then unknown, so its boxes are not clipped).
    public static func images(annotations: [Annotations], detections: [Detections]) throws -> [CrowdImage] {
        let byID = Dictionary(detections.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let known = Set(annotations.map(\.id))
        if let stray = detections.first(where: { !known.contains($0.id) }) {
            throw ModelError("detections name image \(stray.id), which the annotations lack")
        }
        return annotations.map { a in
            let d = byID[a.id]
            return CrowdImage(
                width: d?.width ?? Int.max / 4, height: d?.height ?? Int.max / 4, groundTruth: a.boxes, ignored: a.ignored,
                detections: d?.boxes ?? [], scores: d?.scores ?? [])
        }
    }
}
