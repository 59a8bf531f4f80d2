import Detection
import Engine
import Explain
import Foundation
import TestSupport
import Testing

/// Maps on a backbone stage (FCOS, through the FPN) and on Faster R-CNN's RoI features projected into the proposal,
/// against `Tools/make_explain_fixtures.py --feature-sources`.
struct FeatureSourceTests {
    struct Manifest: Decodable {
        let image: String
        let fcos: [OdamGoldenTests.Prediction]
        let fasterrcnn: [OdamGoldenTests.Prediction]
    }

    static func compare(_ maps: [[ExplanationTarget: HeatMap]], _ f: FixtureTensors, prefix: String) {
        for (index, perTarget) in maps.enumerated() {
            for target in [ExplanationTarget.score, .x1] {
                let expected = f.tensor("\(prefix).\(index).\(target.rawValue).raw")
                let scale = max(expected.scalars.max() ?? 0, 1e-12)
                let message = mismatch(perTarget[target]!.raw, expected, rtol: 1e-3, atol: 1e-4 * scale)
                #expect(message == nil, "\(prefix) \(index) \(target): \(message ?? "")")
                #expect(expected.scalars.contains { $0 > 0 }, "a map with content")
            }
        }
    }

    @Test func backboneStageAndRoIFeatures() throws {
        let directory = fixtureDirectory(bundle: .module)
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/odam_feature_sources.json")))
        let f = try FixtureTensors(path: directory + "/odam_feature_sources.safetensors")

        let fcos = try OdamGoldenTests.detector("fcos_small") as! FCOS
        var (trace, result) = try OdamGoldenTests.forward(fcos, image: manifest.image)
        result.candidates = manifest.fcos.map {
            Candidate(box: [0, 0, 1, 1], score: 1, label: $0.label, level: $0.level, row: $0.row!, column: $0.column!, anchor: 0)
        }
        let backboneMaps = FCOSExplainer(detector: fcos, seedsPerPass: 3, feature: .backbone(stage: 1)).explain(
            trace: trace, result: result, predictions: Array(result.candidates.indices), targets: [.score, .x1])
        Self.compare(backboneMaps, f, prefix: "fcos")

        let fasterRCNN = try OdamGoldenTests.detector("fasterrcnn_small") as! FasterRCNN
        (trace, result) = try OdamGoldenTests.forward(fasterRCNN, image: manifest.image)
        trace.proposals = Tensor(shape: [manifest.fasterrcnn.count, 5], values: manifest.fasterrcnn.flatMap { [0] + $0.proposal! })
        result.candidates = manifest.fasterrcnn.map {
            Candidate(box: [0, 0, 1, 1], score: 1, label: $0.label, level: $0.level, row: $0.roi!, column: 0, anchor: 0)
        }
        let roiMaps = FasterRCNNExplainer(detector: fasterRCNN, seedsPerPass: 4, feature: .roiFeatures).explain(
            trace: trace, result: result, predictions: Array(result.candidates.indices), targets: [.score, .x1])
        Self.compare(roiMaps, f, prefix: "fasterrcnn")
    }
}
