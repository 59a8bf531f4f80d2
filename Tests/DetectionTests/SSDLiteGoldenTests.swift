import DefaultModel
import Detection
import Engine
import Foundation
import TestSupport
import Testing
import Vision

/// The converted SSDLite person detector against TensorFlow running the original frozen graph
/// (`Tools/make_ssdlite_fixtures.py`): anchors, raw box encodings and class logits of all 1917 anchors, and the
/// graph's final detections, on PNG photos.
struct SSDLiteGoldenTests {
    static let images = ["astronaut", "camera", "chelsea", "coffee"]

    static func detector() throws -> SSDLite {
        let files = try DefaultModel.files(.ssdlitePerson)
        return try #require(try ModelSpec.resolve(files.spec).load(weights: files.weights) as? SSDLite)
    }

    /// Per-map outputs [N, A·K, H, W] in TensorFlow's order: [H·W·A, K], maps concatenated.
    static func flattened(_ levels: [Tensor], perCell: [Int]) -> [Float] {
        zip(levels, perCell).flatMap { level, anchors in
            let channels = level.shape[1] / anchors
            return level.reshaped([anchors, channels, level.shape[2], level.shape[3]]).permuted([2, 3, 0, 1]).scalars
        }
    }

    @Test func anchorsAreTensorFlows() throws {
        let fixture = try FixtureTensors(path: fixturePath("ssdlite_golden.safetensors", bundle: .module))
        let expected = fixture.tensor("anchors").scalars
        let generator = SSDAnchors()
        let grids = [19, 10, 5, 3, 2, 1]
        // TensorFlow's BoxList holds corners (ymin, xmin, ymax, xmax); odam keeps centres and sizes.
        let centred = grids.enumerated().flatMap { generator.anchors(layer: $0.offset, gridHeight: $0.element, gridWidth: $0.element) }
        let ours = stride(from: 0, to: centred.count, by: 4).flatMap { i in
            let (y, x, h, w) = (centred[i], centred[i + 1], centred[i + 2], centred[i + 3])
            return [y - h / 2, x - w / 2, y + h / 2, x + w / 2]
        }
        #expect(ours.count == expected.count && ours.count == 1917 * 4)
        let worst = zip(ours, expected).map { abs($0 - $1) }.max() ?? 1
        #expect(worst < 1e-6, "anchors differ by \(worst)")
    }

    @Test(arguments: images)
    func rawOutputsAndDetectionsMatchTensorFlow(image name: String) throws {
        let fixture = try FixtureTensors(path: fixturePath("ssdlite_golden.safetensors", bundle: .module))
        let model = try Self.detector()
        // TensorFlow's graph keeps every candidate above 1e-8 and returns 100 detections.
        model.thresholds.scoreThreshold = 1e-8
        let image = try ImageCodec().decode(contentsOf: sampleImagePath(name + ".png"))
        var timings = StageTimings()
        let (trace, results) = withoutGradients {
            model.forward(model.transform.batch([image.tensor()]), timings: &timings)
        }
        let perCell = (0..<6).map { model.anchors.anchorsPerLocation(layer: $0) }
        for (key, fixtureName, tolerance) in [("bbox_regression", "encodings", Float(2e-4)), ("cls_logits", "logits", Float(2e-4))] {
            let ours = Self.flattened(trace.head[key]!, perCell: perCell)
            let expected = fixture.tensor("\(name).\(fixtureName)").scalars
            #expect(ours.count == expected.count)
            let worst = zip(ours, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 1
            #expect(worst < tolerance, "\(name) \(fixtureName): worst relative difference \(worst)")
        }
        // Detections: TensorFlow's boxes are normalized (ymin, xmin, ymax, xmax); odam's are pixels (x1, y1, x2, y2).
        let expectedScores = fixture.tensor("\(name).scores").scalars
        let expectedBoxes = fixture.tensor("\(name).boxes").scalars
        let detections = results[0].detections
        #expect(detections.count == expectedScores.count, "\(name): \(detections.count) detections, TensorFlow \(expectedScores.count)")
        let (width, height) = (Float(image.width), Float(image.height))
        var matched = 0
        for (index, score) in expectedScores.enumerated() where score > 0.001 {
            let box = [
                expectedBoxes[4 * index + 1] * width, expectedBoxes[4 * index] * height, expectedBoxes[4 * index + 3] * width,
                expectedBoxes[4 * index + 2] * height,
            ]
            let partner = detections.first { d in abs(d.score - score) < 1e-4 && zip(Array(d.box), box).allSatisfy { abs($0 - $1) < 1e-3 } }
            #expect(partner != nil, "\(name): TensorFlow's detection \(index) (score \(score), box \(box)) has no partner")
            matched += 1
        }
        if name == "astronaut" || name == "camera" {
            #expect(matched >= 1 && (detections.first?.score ?? 0) > 0.9, "\(name): the person is found")
        } else {
            #expect(detections.allSatisfy { $0.score < 0.5 }, "\(name): no person above 0.5")
        }
    }
}
