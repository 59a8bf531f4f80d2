import Detection
import Engine
import Explain
import Foundation
import TestSupport
import Testing
import Vision

/// ODAM maps of the exact path against torch.autograd (`Tools/make_explain_fixtures.py`).
struct OdamGoldenTests {
    struct Prediction: Decodable { let level: Int, row: Int, column: Int, label: Int }
    struct Manifest: Decodable {
        let image: String
        let targets: [String]
        let predictions: [Prediction]
    }

    /// Pearson correlation of two equally shaped maps.
    static func correlation(_ a: Tensor, _ b: Tensor) -> Double {
        let x = a.scalars.map(Double.init), y = b.scalars.map(Double.init)
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            sxy += (x[i] - mx) * (y[i] - my)
            sxx += (x[i] - mx) * (x[i] - mx)
            syy += (y[i] - my) * (y[i] - my)
        }
        return sxx == 0 && syy == 0 ? 1 : sxy / (sxx * syy).squareRoot()
    }

    @Test func exactPathMatchesAutograd() throws {
        let directory = fixtureDirectory(bundle: .module)
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/odam_fcos_small.json")))
        let f = try FixtureTensors(path: directory + "/odam_fcos_small.safetensors")
        var detectorFixtures = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { detectorFixtures.deleteLastPathComponent() }
        let base = detectorFixtures.appendingPathComponent("DetectionTests/Fixtures/fcos_small").path
        let detector = try ModelSpec.resolve(base + ".json").load(weights: base + ".pth") as! FCOS
        let image = try ImageCodec().decode(contentsOf: sampleImagePath(manifest.image)).tensor()
        let (trace, results) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
            var timings = StageTimings()
            return detector.forward(detector.transform.batch([image]), timings: &timings)
        }
        var result = results[0]
        result.candidates = manifest.predictions.map {
            Candidate(box: [0, 0, 1, 1], score: 1, label: $0.label, level: $0.level, row: $0.row, column: $0.column, anchor: 0)
        }
        let targets = manifest.targets.map { ExplanationTarget(rawValue: $0)! }
        let maps = FCOSExplainer(detector: detector, seedsPerPass: 5).explain(
            trace: trace, result: result, predictions: Array(result.candidates.indices), targets: targets)
        for (index, perTarget) in maps.enumerated() {
            for target in targets {
                let map = try #require(perTarget[target])
                let raw = f.tensor("\(index).\(target.rawValue).raw")
                let rawScale = max(raw.scalars.max() ?? 0, 1e-12)
                #expect(mismatch(map.raw, raw, rtol: 1e-3, atol: 1e-4 * rawScale) == nil, "prediction \(index) \(target) raw map")
                let normalized = map.normalized.sliced(alongAxis: 0, start: 0, end: map.normalized.shape[0], step: 4)
                    .sliced(alongAxis: 1, start: 0, end: map.normalized.shape[1], step: 4)
                let expected = f.tensor("\(index).\(target.rawValue).normalized")
                let maxDifference = zip(normalized.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
                #expect(maxDifference <= 1e-3, "prediction \(index) \(target): max |difference| \(maxDifference)")
                #expect(Self.correlation(normalized, expected) >= 0.999, "prediction \(index) \(target): correlation")
            }
        }
        // The baselines from the same gradients.
        for (name, method) in [("gradcam", HeatMapMethod.gradCAM), ("gradcampp", .gradCAMPlusPlus)] {
            let baseline = FCOSExplainer(detector: detector, seedsPerPass: 5, method: method).explain(
                trace: trace, result: result, predictions: Array(result.candidates.indices), targets: [.score])
            for (index, perTarget) in baseline.enumerated() {
                let expected = f.tensor("\(index).\(name).raw")
                let scale = max(expected.scalars.max() ?? 0, 1e-12)
                let message = mismatch(perTarget[.score]!.raw, expected, rtol: 1e-3, atol: 1e-3 * scale)
                #expect(message == nil, "prediction \(index) \(name): \(message ?? "")")
            }
        }
    }
}
