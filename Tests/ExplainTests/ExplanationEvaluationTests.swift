import Detection
import Engine
import Explain
import Foundation
import TestSupport
import Testing
import Vision

struct ExplanationEvaluationTests {
    /// End to end on a COCO file whose ground truth is two of the model's own detections on a sample image.
    @Test func evaluatesEveryMethodOnACOCOFile() throws {
        let base = Repository.path("Tests/DetectionTests/Fixtures/fcos_small")
        let detector = try ModelSpec.resolve(base + ".json").load(weights: base + ".pth") as! FCOS
        let image = try ImageCodec().decode(contentsOf: sampleImagePath("chelsea.png"))
        var timings = StageTimings()
        let detections = detector.detect([image.tensor()], timings: &timings)[0].detections
        try #require(detections.count >= 2)
        let chosen = Array(detections.prefix(2))
        let annotations = chosen.enumerated().map { index, d -> [String: Any] in
            [
                "id": index + 1, "image_id": 1, "category_id": d.label, "iscrowd": 0,
                "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]].map(Double.init),
                // The random-weight model's boxes are thin; the mask is the box grown by 12 px, so mask metrics see area.
                "segmentation": [
                    [
                        d.box[0] - 12, d.box[1] - 12, d.box[2] + 12, d.box[1] - 12, d.box[2] + 12, d.box[3] + 12, d.box[0] - 12,
                        d.box[3] + 12,
                    ].map(Double.init)
                ],
            ]
        }
        let json: [String: Any] = [
            "images": [["id": 1, "file_name": "chelsea.png", "width": image.width, "height": image.height]],
            "categories": (0..<5).map { ["id": $0, "name": "class\($0)"] }, "annotations": annotations,
        ]
        let coco = try COCOAnnotations(data: try JSONSerialization.data(withJSONObject: json), file: "generated.json")
        let rows = try ExplanationEvaluation(matchIoU: 0.9, scoreThreshold: 0.1).run(
            detector: detector, annotations: coco, imageDirectory: sampleImagesDirectory,
            methods: [("odam", .gradient(.odam())), ("gradcam", .gradient(.gradCAM)), ("gradcampp", .gradient(.gradCAMPlusPlus))])
        #expect(rows.map(\.method) == ["odam", "gradcam", "gradcampp"])
        for row in rows {
            #expect(row.objects >= 1, "\(row.method) explained the matched objects")
            for value in [row.pointingBox, row.energyBox, row.odiBox] + row.vea { #expect(value >= 0 && value <= 1) }
            #expect(row.compactness > 0)
        }
        for row in rows { #expect(row.energyMask >= 0 && row.energyMask <= 1 && row.odiMask >= 0 && row.odiMask <= 1) }
        // ODAM is instance-specific: more of its mass lies on the explained object than Grad-CAM's class-wide map.
        #expect(rows[0].energyMask > rows[1].energyMask)
        #expect(ExplanationEvaluation.table(rows).contains("gradcampp"))
    }

    /// D-RISE, deletion/insertion and the sanity check, on the model with boxes of area and each detector kind.
    @Test(arguments: ["fcos_small", "retinanet_small", "fasterrcnn_small"])
    func everyMetricOnEveryDetector(_ name: String) throws {
        let base = Repository.path("Tests/DetectionTests/Fixtures/\(name)")
        let spec = try ModelSpec.resolve(base + ".json")
        let detector = name == "fcos_small" ? try DetectionEvaluationTests.detectorWithBoxes() : try spec.load(weights: base + ".pth")
        let image = try ImageCodec().decode(contentsOf: sampleImagePath("coffee.png"))
        var timings = StageTimings()
        let detections = detector.detect([image.tensor()], timings: &timings)[0].detections.filter {
            ($0.box[2] - $0.box[0]) * ($0.box[3] - $0.box[1]) > 100
        }
        try #require(detections.count >= 2)
        let annotations = detections.prefix(2).enumerated().map { index, d -> [String: Any] in
            [
                "id": index + 1, "image_id": 1, "category_id": d.label, "iscrowd": 0,
                "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]].map(Double.init),
            ]
        }
        let json: [String: Any] = [
            "images": [["id": 1, "file_name": "coffee.png", "width": image.width, "height": image.height]],
            "categories": (0..<detector.classCount).map { ["id": $0, "name": "class\($0)"] }, "annotations": annotations,
        ]
        let coco = try COCOAnnotations(data: try JSONSerialization.data(withJSONObject: json), file: "generated.json")
        var evaluation = ExplanationEvaluation(matchIoU: 0.9, scoreThreshold: 0)
        evaluation.faithfulness = true
        evaluation.randomized = try RandomizationCheck.headRandomized(detector, spec: spec)
        let rows = try evaluation.run(
            detector: detector, annotations: coco, imageDirectory: sampleImagesDirectory,
            methods: [("odam", .gradient(.odam())), ("drise", .drise(DRISE(maskCount: 4)))])
        for row in rows {
            #expect(row.objects >= 1, "\(name) \(row.method): objects")
            #expect(row.faithfulnessObjects == row.objects && row.deletion[0] == 1 && row.insertion[0] == 0)
            #expect(row.deletionAUC >= 0 && row.insertionAUC >= 0 && row.secondsPerObject > 0)
        }
        #expect(rows[0].randomizedCorrelation != nil && rows[1].randomizedCorrelation == nil, "the sanity check covers gradient methods")
        #expect(abs(rows[0].randomizedCorrelation!) <= 1)
        let table = ExplanationEvaluation.table(rows)
        #expect(table.contains("drise") && table.contains("del AUC"))
    }
}
