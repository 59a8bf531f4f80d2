import Detection
import Engine
import Foundation
import Reports
import Synthesis
import Testing
import Vision

/// The soak benchmark's random-weight model: calibrated so that ODAM has candidates to explain.
struct SoakModelTests {
    @Test func randomWeightsAreCalibratedToTheCandidateCountAndLoadAsWritten() throws {
        let folder = NSTemporaryDirectory() + "odam-soak-model-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try SyntheticDataset.write(directory: folder, count: 1, seed: 3, generator: SceneGenerator(width: 128, height: 128))
        var spec = ModelSpec(architecture: .fcos)
        (spec.backbone, spec.baseWidth, spec.fpnChannels, spec.minSize, spec.maxSize) = ("resnet18", 8, 32, 128, 128)
        let specPath = folder + "/small.json"
        try JSONEncoder().encode(spec).write(to: URL(fileURLWithPath: specPath))
        let scene = folder + "/images/000000.png"
        let weights = folder + "/small.safetensors"

        let (shift, count) = try RunnerBenchmark.writeRandomWeights(
            model: specPath, scene: scene, candidates: 12, threshold: 0.3, to: weights)
        // A random head scores near its prior (0.01): without a shift nothing would pass 0.3.
        #expect(shift > 0)
        #expect(count >= 12)

        let detector = try spec.load(weights: weights)
        let image = try ImageCodec().decode(contentsOf: scene).tensor()
        var timings = StageTimings()
        let result = withoutGradients { detector.forward(detector.transform.batch([image]), timings: &timings).results[0] }
        #expect(result.candidates.count { $0.score > 0.3 } == count)
        // The search returns the smallest shift on its 1/64 grid: calibrating to the count it gave finds it again.
        let lower = try RunnerBenchmark.writeRandomWeights(
            model: specPath, scene: scene, candidates: count, threshold: 0.3, to: folder + "/again.safetensors")
        #expect(lower.shift == shift)
    }
}
