import Detection
import Engine
import Explain
import Foundation
import NN
import TestSupport
import Testing
import Vision

struct DetectionEvaluationTests {
    /// Ground truth made of the model's own detections after NMS at 0.5 on two sample images, plus an image that
    /// cannot be read: NMS at 0.5 must then find every object, through the whole pipeline (boxes mapped back to the
    /// original pixels, labels as category ids), and the bad image is reported and left out.
    static func groundTruth(_ detector: FCOS) throws -> (json: [String: Any], crowdCategory: Int) {
        var images: [[String: Any]] = [], annotations: [[String: Any]] = []
        var labels: [Int: Int] = [:]
        for (index, name) in ["chelsea.png", "coffee.png"].enumerated() {
            let image = try ImageCodec().decode(contentsOf: sampleImagePath(name))
            var timings = StageTimings()
            let output = detector.detect([image.tensor()], timings: &timings)[0].suppressed(by: .nms(iouThreshold: 0.5), limit: 100)
            images.append(["id": index + 1, "file_name": name, "width": image.width, "height": image.height])
            // A box clipped to a line at the image's edge can match nothing (IoU 0): it stays out of the ground
            // truth and counts as the one false positive.
            for d in output.detections where (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) > 1 {
                labels[d.label, default: 0] += 1
                annotations.append([
                    "id": annotations.count + 1, "image_id": index + 1, "category_id": d.label, "iscrowd": 0,
                    "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]].map(Double.init),
                    "area": Double((d.box[2] - d.box[0]) * (d.box[3] - d.box[1])),
                ])
            }
        }
        images.append(["id": 3, "file_name": "README.md", "width": 10, "height": 10])
        let json: [String: Any] = [
            "images": images, "categories": (0..<detector.classCount).map { ["id": $0, "name": "class\($0)"] }, "annotations": annotations,
        ]
        return (json, labels.max { $0.value < $1.value }!.key)
    }

    /// The random-weight model with its box regression raised by 2 strides per side: its boxes have area (the
    /// untouched model's are lines, which no IoU can match).
    static func detectorWithBoxes() throws -> FCOS {
        let detector = try FastPathAgreementTests.detector()
        detector.boxRegression.bias!.value = detector.boxRegression.bias!.value + Tensor(shape: [4], values: [2, 2, 2, 2])
        return detector
    }

    @Test func nmsFindsItsOwnDetections() throws {
        let detector = try Self.detectorWithBoxes()
        let (json, category) = try Self.groundTruth(detector)
        let coco = try COCOAnnotations(data: try JSONSerialization.data(withJSONObject: json), file: "generated.json")
        #expect(coco.annotations.count >= 4)
        let methods: [SuppressionMethod] = [
            .nms(iouThreshold: 0.5), .softNMS(SoftNMS(decay: .gaussian(sigma: 0.5), scoreThreshold: 0.1)), .odam(.fcos),
        ]
        let report = try DetectionEvaluation(crowdCategory: category).run(
            detector: detector, groundTruth: .coco(coco), imageDirectory: sampleImagesDirectory, methods: methods)
        #expect(report.images == 2 && report.failures.count == 1 && report.failures[0].contains("README.md"))
        #expect(report.rows.map(\.method) == ["nms", "softnms", "odam"])
        let nms = report.rows[0]
        // Every object found at every IoU threshold; the one degenerate box costs a little precision.
        #expect(abs(nms.coco!.ar100 - 1) < 1e-9 && nms.coco!.ap50 > 0.98 && nms.coco!.ap > 0.98, "NMS AP \(nms.coco!.stats)")
        #expect(nms.crowd.jaccardIndex > 0.97 && nms.crowd.missRate == 0 && nms.crowd.ap50 > 0.97, "\(nms.crowd)")
        for row in report.rows.dropFirst() {
            #expect(row.coco!.ap50 >= 0 && row.coco!.ap50 <= 1 && row.crowd.jaccardIndex >= 0 && row.crowd.jaccardIndex <= 1)
        }
        #expect(report.forwardSeconds > 0 && report.mapSeconds > 0)
        let table = DetectionEvaluation.table(report)
        #expect(table.contains("odam") && table.contains("skipped:"))
    }

    /// Odam-NMS on the exact path serves every detector (RetinaNet's class logit on its level, Faster R-CNN's on
    /// its RoI features); the approximate path is FCOS's reversed head and refuses the others.
    @Test(arguments: ["retinanet_small", "fasterrcnn_small"])
    func odamNMSRunsOnEveryDetector(model: String) throws {
        let base = Repository.path("Tests/DetectionTests/Fixtures/\(model)")
        // Random weights score many cells alike: a high threshold keeps the candidates (all of which get maps) few.
        var spec = try ModelSpec.resolve(base + ".json")
        spec.scoreThreshold = 0.6
        spec.topKCandidates = 50
        let detector = try spec.load(weights: base + ".pth")
        let coco = try COCOAnnotations(
            data: Data(
                #"{"images": [{"id": 1, "file_name": "chelsea.png", "width": 451, "height": 300}], "annotations": [], "categories": [{"id": 1, "name": "person"}]}"#
                    .utf8), file: "one.json")
        let evaluation = DetectionEvaluation(crowdCategory: 1)
        let report = try evaluation.run(
            detector: detector, groundTruth: .coco(coco), imageDirectory: sampleImagesDirectory,
            methods: [.nms(iouThreshold: 0.5), .odam(.fcos)])
        #expect(report.images == 1 && report.mapSeconds > 0 && report.failures.isEmpty)
        #expect(throws: ModelError.self) {
            try evaluation.run(
                detector: detector, groundTruth: .coco(coco), imageDirectory: sampleImagesDirectory, methods: [.odam(.fcos)],
                mapPath: .approximate)
        }
    }
}
