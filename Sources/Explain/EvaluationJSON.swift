import Detection
import Foundation

/// Machine-readable forms of the evaluations (`odam eval detect|explain --json`): one JSON object, keys in snake case,
/// metrics that are undefined (NaN, as pycocotools' −1 becomes for an empty category) as null.
public enum EvaluationJSON {
    /// The object as compact JSON text with sorted keys; non-finite numbers become null.
    public static func text(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: finite(object), options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func finite(_ value: Any) -> Any {
        switch value {
        case let number as Double: return number.isFinite ? number : NSNull()
        case let number as Float: return number.isFinite ? Double(number) : NSNull()
        case let array as [Any]: return array.map(finite)
        case let dictionary as [String: Any]: return dictionary.mapValues(finite)
        default: return value
        }
    }

    /// `odam eval detect`'s report.
    public static func detection(_ report: DetectionEvaluation.Report) -> [String: Any] {
        [
            "images": report.images, "forward_seconds_per_image": report.forwardSeconds, "map_seconds_per_image": report.mapSeconds,
            "failures": report.failures,
            "methods": report.rows.map { row -> [String: Any] in
                var entry: [String: Any] = [
                    "method": row.method, "nms_seconds_per_image": row.suppressionSeconds,
                    "crowd": [
                        "ap50": row.crowd.ap50, "mr2": row.crowd.missRate, "ji": row.crowd.jaccardIndex,
                        "crowd_recall": row.crowd.crowdRecall,
                        "sparse_recall": row.crowd.sparseRecall, "crowd_count": row.crowd.crowdCount, "sparse_count": row.crowd.sparseCount,
                        "ji_score_threshold": row.crowd.jaccardScoreThreshold,
                        "crowd_recall_at_best_ji": row.crowd.crowdRecallAtBestJaccard,
                        "sparse_recall_at_best_ji": row.crowd.sparseRecallAtBestJaccard,
                    ] as [String: Any],
                ]
                if let summary = row.coco { entry["coco"] = coco(summary) }
                return entry
            },
        ]
    }

    /// A COCO summary: the twelve numbers by name (`ap`, `ap50`, …, `ar_large`), undefined ones null.
    public static func coco(_ summary: COCOEvaluation.Summary) -> [String: Any] {
        Dictionary(uniqueKeysWithValues: zip(COCOEvaluation.Summary.keys, summary.stats.map { $0 < 0 ? Double.nan : $0 }))
    }

    /// `odam eval explain`'s rows, one per method.
    public static func explanation(_ rows: [ExplanationEvaluation.Row]) -> [String: Any] {
        [
            "methods": rows.map { row -> [String: Any] in
                // Curves that were not computed (no --faithfulness) are null, not zeros.
                let curves = row.faithfulnessObjects > 0
                return [
                    "method": row.method, "objects": row.objects, "pointing_box": row.pointingBox, "pointing_mask": row.pointingMask,
                    "energy_box": row.energyBox, "energy_mask": row.energyMask, "compactness": row.compactness, "odi_box": row.odiBox,
                    "odi_mask": row.odiMask, "vea": row.vea, "faithfulness_objects": row.faithfulnessObjects,
                    "deletion": curves ? row.deletion as Any : NSNull(), "insertion": curves ? row.insertion as Any : NSNull(),
                    "deletion_auc": curves ? row.deletionAUC : Double.nan, "insertion_auc": curves ? row.insertionAUC : Double.nan,
                    "randomized_correlation": row.randomizedCorrelation ?? Double.nan, "seconds_per_object": row.secondsPerObject,
                ]
            }
        ]
    }
}
