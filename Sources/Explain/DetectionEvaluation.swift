public import Detection
import Engine
import Foundation
import Vision

/// `odam eval detect`: one forward pass per image, then each suppression method on the same candidates, scored with
/// COCO AP/AR and the crowd metrics, with seconds per image for the forward pass, the candidate maps and each NMS.
public struct DetectionEvaluation {
    /// The ground truth: a COCO file, or CrowdHuman `.odgt` records (images found as `ID.jpg` or `ID.png`).
    public enum GroundTruth: Sendable {
        case coco(COCOAnnotations)
        case crowdHuman([CrowdHumanFile.Annotations])
    }

    public struct Row: Sendable {
        public var method: String
        /// COCO AP/AR over all categories (COCO ground truth only).
        public var coco: COCOEvaluation.Summary?
        /// AP50, MR⁻², JI and crowd/sparse recall of the crowd category.
        public var crowd: CrowdMetrics
        /// Seconds per image of this method's NMS.
        public var suppressionSeconds: Double
    }

    public struct Report: Sendable {
        public var rows: [Row]
        public var images: Int
        /// Seconds per image of the forward pass (transform included) and of the candidate maps (Odam-NMS only).
        public var forwardSeconds: Double
        public var mapSeconds: Double
        /// Images that could not be read, with the cause; they are left out of every metric.
        public var failures: [String]
    }

    /// The category whose boxes the crowd metrics score (COCO: a category id; CrowdHuman: the detector's label).
    public var crowdCategory: Int
    public var detectionsPerImage: Int

    public init(crowdCategory: Int, detectionsPerImage: Int = 100) {
        self.crowdCategory = crowdCategory
        self.detectionsPerImage = detectionsPerImage
    }

    struct Entry {
        var key: String
        var path: String
        var cocoID: Int
        var truth: [Box<Double>]
        var ignored: [Bool]
    }

    static func entries(_ groundTruth: GroundTruth, imageDirectory: String, crowdCategory: Int) -> [Entry] {
        func box(_ a: COCOAnnotations.Annotation) -> Box<Double> {
            let b = a.fileBBox
            return Box<Double>(b[0], b[1], b[0] + b[2], b[1] + b[3])
        }
        switch groundTruth {
        case .coco(let coco):
            let byImage = Dictionary(grouping: coco.annotations.filter { $0.categoryID == crowdCategory }, by: \.imageID)
            return coco.images.map { image in
                let truth = byImage[image.id] ?? []
                return Entry(
                    key: image.fileName, path: imageDirectory + "/" + image.fileName, cocoID: image.id, truth: truth.map(box),
                    ignored: truth.map(\.ignore))
            }
        case .crowdHuman(let records):
            return records.enumerated().map { index, record in
                let candidates = ["jpg", "png", "jpeg"].map { imageDirectory + "/" + record.id + "." + $0 }
                let path = candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
                return Entry(key: record.id, path: path, cocoID: index + 1, truth: record.boxes, ignored: record.ignored)
            }
        }
    }

    /// Runs `detector` on every image and scores each method. Odam-NMS's candidate maps come from `mapPath`
    /// (``DetectorMaps``: `auto` by default, exact or verified for any of odam's detectors).
    public func run(
        detector: any Detector, groundTruth: GroundTruth, imageDirectory: String, methods: [SuppressionMethod], mapPath: MapPath = .auto
    ) throws -> Report {
        let needsMaps = methods.contains { if case .odam = $0 { true } else { false } }
        var results = [[COCOResult]](repeating: [], count: methods.count)
        var crowdImages = [[CrowdImage]](repeating: [], count: methods.count)
        var suppressionSeconds = [Double](repeating: 0, count: methods.count)
        var forwardSeconds = 0.0, mapSeconds = 0.0
        let passes = try forEachPass(
            detector: detector, groundTruth: groundTruth, imageDirectory: imageDirectory, mapPath: needsMaps ? mapPath : nil
        ) { entry, image, pass in
            forwardSeconds += pass.forwardMilliseconds / 1000
            mapSeconds += (pass.candidateMapsMilliseconds ?? 0) / 1000
            for (m, method) in methods.enumerated() {
                let (chosen, milliseconds) = Stopwatch.time { pass.suppressed(by: method, limit: detectionsPerImage) }
                suppressionSeconds[m] += milliseconds / 1000
                results[m] += chosen.detections.map { COCOResult(imageID: entry.cocoID, detection: $0) }
                crowdImages[m].append(crowdImage(entry, width: image.width, height: image.height, detections: chosen.detections))
            }
        }
        let perImage = Double(max(passes.evaluated, 1))
        var rows: [Row] = []
        for (m, method) in methods.enumerated() {
            var coco: COCOEvaluation.Summary? = nil
            if case .coco(let annotations) = groundTruth {
                // Images that failed to decode are left out of the ground truth too.
                var readable = annotations
                readable.images.removeAll { passes.failedIDs.contains($0.id) }
                readable.annotations.removeAll { passes.failedIDs.contains($0.imageID) }
                coco = try COCOEvaluation().evaluate(groundTruth: readable, results: results[m])
            }
            rows.append(
                Row(
                    method: method.name, coco: coco, crowd: CrowdEvaluation.evaluate(crowdImages[m]),
                    suppressionSeconds: suppressionSeconds[m] / perImage))
        }
        return Report(
            rows: rows, images: passes.evaluated, forwardSeconds: forwardSeconds / perImage, mapSeconds: mapSeconds / perImage,
            failures: passes.failures)
    }

    /// The forward pass and (with `mapPath`) the candidate maps of every image of `groundTruth`, each handed to `body`
    /// in order; an image that cannot be read or whose output is not finite is listed with its cause and skipped.
    func forEachPass(
        detector: any Detector, groundTruth: GroundTruth, imageDirectory: String, mapPath: MapPath?,
        variants: [CandidateVariant] = [.standard], _ body: (Entry, RGBImage, CandidatePass) throws -> Void
    ) throws -> (evaluated: Int, failures: [String], failedIDs: Set<Int>) {
        let mapMaker = try mapPath.map { try DetectorMaps(detector: detector, path: $0) }
        let codec = ImageCodec()
        var failures: [String] = []
        var failedIDs = Set<Int>()
        var evaluated = 0
        for entry in Self.entries(groundTruth, imageDirectory: imageDirectory, crowdCategory: crowdCategory) {
            let image: RGBImage
            let pass: CandidatePass
            do {
                image = try codec.decode(contentsOf: entry.path)
                pass = try CandidatePass(image: image, detector: detector, mapMaker: mapMaker, variants: variants)
            } catch {
                let cause = "\(error)"
                failures.append(cause.hasPrefix(entry.path) ? cause : "\(entry.path): \(cause)")
                failedIDs.insert(entry.cocoID)
                continue
            }
            evaluated += 1
            try body(entry, image, pass)
        }
        return (evaluated, failures, failedIDs)
    }

    /// The crowd metrics' view of one image: its people and ignore regions, and the detections of the crowd category.
    func crowdImage(_ entry: Entry, width: Int, height: Int, detections: [Detection]) -> CrowdImage {
        let person = detections.filter { $0.label == crowdCategory }
        return CrowdImage(
            width: width, height: height, groundTruth: entry.truth, ignored: entry.ignored,
            detections: person.map { Box<Double>(Double($0.box[0]), Double($0.box[1]), Double($0.box[2]), Double($0.box[3])) },
            scores: person.map { Double($0.score) })
    }

    /// The report as a table: one row per method.
    public static func table(_ report: Report) -> String {
        func cell(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        func number(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "-" }
        var lines = [
            cell("method", 9) + cell("AP", 8) + cell("AP50", 8) + cell("AP50ᶜ", 8) + cell("MR⁻²", 8) + cell("JI", 8)
                + cell("recall crowd", 14) + cell("recall sparse", 15) + "NMS s/img"
        ]
        for row in report.rows {
            lines.append(
                cell(row.method, 9) + cell(number(row.coco?.ap), 8) + cell(number(row.coco?.ap50), 8) + cell(number(row.crowd.ap50), 8)
                    + cell(number(row.crowd.missRate), 8) + cell(number(row.crowd.jaccardIndex), 8)
                    + cell(number(row.crowd.crowdRecall) + " (\(row.crowd.crowdCount))", 14)
                    + cell(number(row.crowd.sparseRecall) + " (\(row.crowd.sparseCount))", 15)
                    + String(format: "%.5f", row.suppressionSeconds))
        }
        lines.append(
            "\(report.images) images; seconds per image: forward \(String(format: "%.3f", report.forwardSeconds)), candidate maps "
                + String(format: "%.3f", report.mapSeconds)
                + ". AP, AP50: COCO over all categories; AP50ᶜ, MR⁻², JI and recall: CrowdHuman-style on the crowd category.")
        for failure in report.failures { lines.append("skipped: \(failure)") }
        return lines.joined(separator: "\n")
    }
}
