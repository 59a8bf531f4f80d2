import Foundation
import Vision

/// Output formats of `odam detect`: JSON lines and COCO results.
public enum DetectionReport {
    /// One JSON object per detection: image, box (x1, y1, x2, y2 in original pixels), score, label.
    public static func jsonLines(image: String, _ detections: [Detection], labelNames: ClassNames = ClassNames(names: [])) -> [String] {
        detections.map { detection in
            let box = detection.box.map { formatted($0) }.joined(separator: ",")
            let name = labelNames.names.isEmpty ? "" : ",\"label_name\":\(quoted(labelNames.name(of: detection.label)))"
            return
                "{\"image\":\(quoted(image)),\"box\":[\(box)],\"score\":\(formatted(detection.score)),\"label\":\(detection.label)\(name)}"
        }
    }

    /// A JSON line reporting an image that could not be processed.
    public static func errorLine(image: String, _ message: String) -> String {
        "{\"image\":\(quoted(image)),\"error\":\(quoted(message))}"
    }

    /// COCO results entries (`bbox` as x, y, width, height); `category` maps a label to its category id.
    public static func cocoResults(imageID: Int, _ detections: [Detection], category: (Int) -> Int = { $0 }) -> [[String: Any]] {
        detections.map { d in
            [
                "image_id": imageID, "category_id": category(d.label), "score": Double(d.score),
                "bbox": [Double(d.box[0]), Double(d.box[1]), Double(d.box[2] - d.box[0]), Double(d.box[3] - d.box[1])],
            ]
        }
    }

    /// The COCO image id of a file: its numeric stem (`000000000139.jpg` → 139), else `fallback`.
    public static func cocoImageID(path: String, fallback: Int) -> Int {
        let name = (path as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        return Int(stem) ?? fallback
    }

    static func formatted(_ value: Float) -> String {
        let rounded = (Double(value) * 10_000).rounded() / 10_000
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func quoted(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}

extension DetectionReport {
    /// `odam detect`'s work on a list of files: each image decoded and detected; `line` hears its JSON lines (or an
    /// error line), `failed` the cause of each image that failed, which does not stop the others. Returns the COCO
    /// results of every image and how many failed. COCO image ids are the numeric stem (``cocoImageID(path:fallback:)``),
    /// or with `annotations` the annotation file's id for the path (``COCOAnnotations/PathIndex``; images it does not
    /// list are left out of the results and returned) with its category ids for the labels.
    public static func detect(
        images: [String], detector: any Detector, codec: ImageCodec, labelNames: ClassNames = ClassNames(names: []),
        annotations: COCOAnnotations? = nil, line: (String) -> Void, failed: (String) -> Void
    ) -> (coco: [[String: Any]], failures: Int, unmatched: [String]) {
        var coco: [[String: Any]] = []
        var failures = 0
        var unmatched: [String] = []
        let index = annotations.map(COCOAnnotations.PathIndex.init)
        for (position, path) in images.enumerated() {
            do {
                let image = try codec.decode(contentsOf: path)
                var timings = StageTimings()
                let result = detector.detect([image.tensor()], timings: &timings)[0]
                do { try result.checkFinite() } catch { throw DetectionFailure("\(path): \(error)") }
                for text in jsonLines(image: path, result.detections, labelNames: labelNames) { line(text) }
                if let annotations, let index {
                    guard let id = index.imageID(forPath: path) else {
                        unmatched.append(path)
                        continue
                    }
                    coco += cocoResults(imageID: id, result.detections) { label in
                        annotations.categoryID(label: label, labelName: labelNames.names.isEmpty ? nil : labelNames.name(of: label))
                    }
                } else {
                    coco += cocoResults(imageID: cocoImageID(path: path, fallback: position + 1), result.detections)
                }
            } catch {
                failures += 1
                line(errorLine(image: path, "\(error)"))
                failed("\(error)")
            }
        }
        return (coco, failures, unmatched)
    }
}

/// An image `odam detect` could not finish, naming the file.
struct DetectionFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
