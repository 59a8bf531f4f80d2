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
    public static func render(_ detections: [ExportedDetection], as format: Format) throws -> String {
        switch format {
        case .coco:
            let entries: [[String: Any]] = detections.map { d in
                [
                    "image_id": d.imageID, "file_name": d.path, "category_id": d.label, "bbox": [d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1],
                    "score": d.score,
                ]
            }
            return try json(entries) + "\n"
        case .jsonl:
            return try detections.map { d in
                try json(Dictionary(uniqueKeysWithValues: fields.compactMap { field in field.value(d).map { (field.name, $0) } })) + "\n"
            }.joined()
        case .csv:
            return ([CSV.line(columns)] + detections.map { d in CSV.line(fields.map { $0.value(d).map(text) }) }).map { $0 + "\n" }.joined()
        }
    }

    static func text(_ value: Any) -> String { "\(value)" }

    static func json(_ object: Any) throws -> String {
        String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }
}
