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

/// One synthetic crowd scene through the worker's steps with the shipped model.
struct ImagePipelineTests {
    @Test func detectsExplainsAndWritesOneMapsFile() throws {
        let files = try DefaultModel.files()
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
        let (tensors, metadata) = try SafeTensors.read(bytes: output.mapsFile, file: "maps.safetensors")
        #expect(metadata["targets"] == "score,x1,y1,x2,y2,combined")
        #expect(tensors.count == output.records.count * 6)
        for rank in output.records.indices {
            let combined = tensors["d\(rank).combined"]!.floatTensor()
            #expect(tensors["d\(rank).combined"]!.dtype == .uint8)
            #expect(combined.shape == [scene.image.height, scene.image.width])
            // The combined map is the pixel-wise maximum of the others, all in [0, 1].
            let parts = ["score", "x1", "y1", "x2", "y2"].map { tensors["d\(rank).\($0)"]!.floatTensor().scalars }
            let expected = (0..<combined.count).map { i in parts.map { $0[i] }.max()! }
            #expect(combined.scalars == expected)
            #expect(combined.scalars.allSatisfy { $0 >= 0 && $0 <= 255 } && combined.scalars.max() == 255)
        }
        // Most people of the crowd scene are found and point at themselves.
        #expect(output.records.filter(\.peakInBox).count * 2 >= output.records.count)
    }
}
