import Detection
import Engine
import Foundation
public import Vision

extension ExplanationWriter {
    /// `odam explain`'s work on a list of files: each image decoded, detected (keeping `extras` for the explainer),
    /// its best `limit` detections explained for `targets` and written to a folder of its own (two files with one
    /// name get `_2`, `_3`, …). `written` hears a line per image written, `failed` one per image that could not be;
    /// an image that fails does not stop the others. Returns how many failed.
    public func explain(
        images: [String], detector: any Detector, explainer: any PredictionExplainer, keeping extras: ForwardTrace.Extra,
        targets: [ExplanationTarget], includesCombined: Bool, limit: Int?, codec: ImageCodec, written: (String) -> Void,
        failed: (String) -> Void
    ) -> Int {
        var failures = 0
        var usedFolders = Set<String>()
        for path in images {
            do {
                let image = try codec.decode(contentsOf: path)
                let (trace, results) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
                    var timings = StageTimings()
                    return detector.forward(detector.transform.batch([image.tensor()]), keeping: extras, timings: &timings)
                }
                var result = results[0]
                if let limit { result.detections = Array(result.detections.prefix(max(limit, 0))) }
                let predictions = result.detections.map(\.candidate)
                let maps = explainer.explain(trace: trace, result: result, image: 0, predictions: predictions, targets: targets)
                let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
                var folder = stem
                var suffix = 2
                while usedFolders.contains(Self.sanitized(folder)) {
                    folder = stem + "_\(suffix)"
                    suffix += 1
                }
                usedFolders.insert(Self.sanitized(folder))
                let folderWritten = try write(
                    imagePath: path, folderName: folder, image: image,
                    detections: result.detections.map { ($0, result.candidates[$0.candidate]) }, maps: maps, targets: targets,
                    includesCombined: includesCombined)
                written("\(path): \(result.detections.count) detections explained in \(folderWritten)")
            } catch {
                failures += 1
                failed("\(error)")
            }
        }
        return failures
    }
}
