import Detection
import Foundation
import Runner

/// A job's detections as files: COCO results JSON, JSON lines, or CSV.
public enum DetectionExport {
    public enum Format: String, Sendable, CaseIterable { case coco, jsonl, csv }

    /// The fields of the JSON lines and CSV formats, in order: each column's name next to how it is read.
    static let fields: [(name: String, value: @Sendable (ExportedDetection) -> Any?)] = [
        ("image_id", { $0.imageID }), ("path", { $0.path }), ("rank", { $0.rank }), ("x1", { $0.x1 }), ("y1", { $0.y1 }),
        ("x2", { $0.x2 }), ("y2", { $0.y2 }), ("score", { $0.score }), ("label", { $0.label }), ("label_name", { $0.labelName }),
        ("energy_in_box", { $0.energyInBox }),
        ("peak_in_box", { $0.peakInBox }), ("compactness", { $0.compactness }), ("max_correlation", { $0.maxCorrelation }),
        ("maps_key", { $0.mapsKey }),
    ]

    /// The columns of the JSON lines and CSV formats, in order.
    public static var columns: [String] { fields.map(\.name) }

    /// The detections in `format`: coco is `[{"image_id", "file_name", "category_id", "bbox": [x, y, w, h], "score"}]`;
    /// jsonl and csv carry one detection per line with ``columns`` (a missing value is left out of a JSON line and
    /// empty in CSV).
    ///
    /// With `annotations` (coco only), the results join that ground truth: each image id is the annotation file's
    /// for the image's path under `source` (the job's folder or URL prefix; ``COCOAnnotations/PathIndex``), each
    /// category id the file's for the label (or for its name), and detections of images the file does not list are
    /// left out and returned. Without, image ids are odam's (`images.id`: stable for the job) and category ids the
    /// labels.
    public static func render(
        _ detections: [ExportedDetection], as format: Format, annotations: COCOAnnotations? = nil, source: String = ""
    ) throws -> (text: String, unmatchedImages: [String]) {
        switch format {
        case .coco:
            let index = annotations.map(COCOAnnotations.PathIndex.init)
            var unmatched: [String] = []
            var entries: [[String: Any]] = []
            for d in detections {
                var imageID = d.imageID, categoryID = d.label
                if let annotations, let index {
                    guard let id = index.imageID(forPath: source.isEmpty ? d.path : source + "/" + d.path) else {
                        if unmatched.last != d.path { unmatched.append(d.path) }
                        continue
                    }
                    imageID = id
                    categoryID = annotations.categoryID(label: d.label, labelName: d.labelName)
                }
                entries.append([
                    "image_id": imageID, "file_name": d.path, "category_id": categoryID, "bbox": [d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1],
                    "score": d.score,
                ])
            }
            return (try json(entries) + "\n", unmatched)
        case .jsonl:
            let lines = try detections.map { d in
                try json(Dictionary(uniqueKeysWithValues: fields.compactMap { field in field.value(d).map { (field.name, $0) } })) + "\n"
            }
            return (lines.joined(), [])
        case .csv:
            let lines = [CSV.line(columns)] + detections.map { d in CSV.line(fields.map { $0.value(d).map(text) }) }
            return (lines.map { $0 + "\n" }.joined(), [])
        }
    }

    static func text(_ value: Any) -> String { "\(value)" }

    static func json(_ object: Any) throws -> String {
        String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }
}
