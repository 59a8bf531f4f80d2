import DefaultModel
import Detection
import Engine
import Explain
import Foundation
import Runner
import ServiceTestSupport
import Synthesis
import TestSupport
import Testing
import Vision
import WeightsIO

/// One synthetic crowd scene through the worker's steps with the shipped synthetic-scene FCOS.
struct ImagePipelineTests {
    @Test func detectsExplainsAndWritesOneMapsFile() throws {
        let files = try DefaultModel.files(.odamTrain)
        let detector = try ModelSpec.resolve(files.spec).load(weights: files.weights) as! FCOS
        let scene = SceneGenerator().scene(index: 2, seed: 9)
        let output = try ImagePipeline(detector: detector).process(scene.image)
        #expect(!output.records.isEmpty && output.candidates >= output.records.count && output.keptByNMS >= 1)
        #expect(output.records.allSatisfy { $0.score > 0.3 })
        let steps = [
            output.timings.forward, output.timings.candidateMaps, output.timings.odamNMS, output.timings.finalMaps, output.timings.encode,
        ]
        #expect(steps.allSatisfy { ($0 ?? -1) >= 0 } && output.timings.fetch == nil, "the pipeline times its own steps")
        for record in output.records {
            #expect(record.energyInBox >= 0 && record.energyInBox <= 1 && record.compactness >= 0)
            let correlation = try #require(record.maxCorrelation, "Odam-NMS made candidate maps")
            #expect(correlation >= 0 && correlation <= 1.0001)
        }
        let file = try MapsFile(bytes: output.mapsFile, file: "maps.safetensors")
        #expect(file.targets == [.score, .x1, .y1, .x2, .y2] && file.width == scene.image.width && file.height == scene.image.height)
        #expect(file.detections.count == output.records.count)
        for (rank, record) in output.records.enumerated() {
            let entry = file.detections[rank]
            #expect(entry.box == record.box && entry.score == record.score && entry.label == record.label)
            #expect(Set(entry.maps.keys) == Set(file.targets))
            // The statistics were computed on the float32 combined map; the rebuilt one gives the same to 1e-3.
            let combined = try file.normalizedMap(rank: rank, target: "combined")
            #expect(combined.shape == [scene.image.height, scene.image.width])
            let energy = ExplanationMetrics.energy(
                combined, region: ExplanationMetrics.boxMask(record.box, height: scene.image.height, width: scene.image.width))
            #expect(abs(energy - record.energyInBox) < 1e-3, "rank \(rank): \(energy) against \(record.energyInBox)")
        }
        // Most people of the crowd scene are found and point at themselves.
        #expect(output.records.filter(\.peakInBox).count * 2 >= output.records.count)
    }
}
