import DefaultModel
import Detection
import Engine
import Explain
import Testing

/// The exact path folds each FCOS tower's first convolution into the map and reuses a prediction's class-logit map in
/// its score map; both must give plain autograd's maps (the gradient taken all the way to the level).
struct FoldedMapsTests {
    @Test func foldedMapsEqualPlainAutogradForEveryTarget() throws {
        let files = try DefaultModel.files(.odamTrain)
        let detector = try ModelSpec.resolve(files.spec).load(weights: files.weights) as! FCOS
        var (trace, result) = try AutoMapPathTests.forward(detector, photo: "coffee.png")
        result.candidates = AutoMapPathTests.candidates(
            trace, levels: Array(trace.pyramid.indices), perLevel: 4, classes: detector.classCount)
        let predictions = Array(result.candidates.indices)
        let folded = FCOSExplainer(detector: detector)
        guard var plain = Explainers.plainAutograd(for: detector, feature: .predictionLevel) as? FCOSExplainer else {
            Issue.record("plain autograd for FCOS is not an FCOSExplainer")
            return
        }
        #expect(folded.folding && !plain.folding)
        plain.seedsPerPass = 4
        // The logit maps first, as Odam-NMS's candidates: the score maps after them reuse them.
        let targets: [ExplanationTarget] = [.score, .x1, .y1, .x2, .y2]
        let logits = folded.explain(trace: trace, result: result, predictions: predictions, targets: [.logit])
        let finals = folded.explain(trace: trace, result: result, predictions: predictions, targets: targets)
        let expected = plain.explain(trace: trace, result: result, predictions: predictions, targets: [.logit] + targets)
        var worst: Float = 1
        for i in predictions {
            for target in [ExplanationTarget.logit] + targets {
                let actual = target == .logit ? logits[i][target]!.raw : finals[i][target]!.raw
                let reference = expected[i][target]!.raw
                worst = min(worst, VerifiedExplainer.pearson(actual, reference))
                let scale = max(reference.scalars.max() ?? 0, 1e-12)
                let largest = zip(actual.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0
                #expect(largest <= 1e-4 * scale, "prediction \(i) \(target): differs by \(largest) of \(scale)")
            }
        }
        #expect(worst > 0.99999)
    }
}
