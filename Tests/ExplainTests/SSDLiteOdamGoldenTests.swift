import DefaultModel
import Detection
import Engine
import Explain
import Foundation
import TestSupport
import Testing
import Vision

/// ODAM maps of the SSDLite person detector against TensorFlow's autograd through the original frozen graph
/// (`Tools/make_ssdlite_fixtures.py`): the best detection of each photo, on the first 19x19 feature map, for its
/// score and two box edges.
struct SSDLiteOdamGoldenTests {
    @Test(arguments: ["astronaut", "camera", "chelsea"])
    func mapsMatchTensorFlowAutograd(image name: String) throws {
        let fixture = try FixtureTensors(path: Repository.path("Tests/DetectionTests/Fixtures/ssdlite_golden.safetensors"))
        let files = try DefaultModel.files(.ssdlitePerson)
        let model = try #require(try ModelSpec.resolve(files.spec).load(weights: files.weights) as? SSDLite)
        model.thresholds.scoreThreshold = 1e-8
        let image = try ImageCodec().decode(contentsOf: sampleImagePath(name + ".png"))
        var timings = StageTimings()
        let (trace, results) = withoutGradients { model.forward(model.transform.batch([image.tensor()]), timings: &timings) }
        let best = try #require(results[0].detections.first)
        let candidate = results[0].candidates[best.candidate]
        // The candidate's anchor in TensorFlow's numbering: maps in order, then (row, column, anchor).
        let grids = [19, 10, 5, 3, 2, 1]
        let before = (0..<candidate.level).map { grids[$0] * grids[$0] * model.anchors.anchorsPerLocation(layer: $0) }.reduce(0, +)
        let anchor =
            before + (candidate.row * grids[candidate.level] + candidate.column) * model.anchors.anchorsPerLocation(layer: candidate.level)
            + candidate.anchor
        #expect(Float(anchor) == fixture.tensor("\(name).anchor").scalars[0], "\(name): the same anchor as TensorFlow's best")
        let maps = SSDLiteExplainer(detector: model).explain(
            trace: trace, result: results[0], predictions: [best.candidate], targets: [.score, .x2, .y1])
        for target in [ExplanationTarget.score, .x2, .y1] {
            let ours = try #require(maps[0][target]).raw
            let expected = fixture.tensor("\(name).odam.\(target.rawValue)")
            #expect(ours.shape == [19, 19] && expected.shape == [19, 19])
            let peak = max(expected.scalars.max() ?? 0, 1e-12)
            let worst = zip(ours.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 1
            #expect(worst <= 1e-3 * peak, "\(name) \(target): worst difference \(worst / peak) of the peak")
            #expect(peak > 0, "\(name) \(target): TensorFlow's map is not empty")
        }
    }
}
