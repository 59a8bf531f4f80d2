import Detection
import Foundation
import Synthesis
import Testing
import Vision

struct SceneGeneratorTests {
    @Test func scenesAreDeterministicAndAnnotated() throws {
        let generator = SceneGenerator(width: 160, height: 120, crowdFraction: 0.5)
        let a = generator.scene(index: 3, seed: 7), b = generator.scene(index: 3, seed: 7)
        #expect(a.image == b.image && a.objects.map(\.box) == b.objects.map(\.box))
        #expect(generator.scene(index: 4, seed: 7).image != a.image)
        var crowd = 0, sparse = 0, ignored = 0
        for index in 0..<40 {
            let scene = generator.scene(index: index, seed: 1)
            if scene.isCrowd { crowd += 1 } else { sparse += 1 }
            #expect(!scene.objects.isEmpty)
            for object in scene.objects {
                #expect(object.box[0] >= 0 && object.box[1] >= 0 && object.box[2] <= 160 && object.box[3] <= 120)
                #expect(object.box[2] > object.box[0] && object.box[3] > object.box[1])
                // The RLE covers the image, and its ones are the visible pixels.
                #expect(object.visibleCounts.reduce(0, +) == 160 * 120)
                let ones = stride(from: 1, to: object.visibleCounts.count, by: 2).reduce(0) { $0 + object.visibleCounts[$1] }
                #expect(ones == object.visiblePixels)
                if object.ignored { ignored += 1 }
                #expect(object.ignored == (object.visibility < 0.25 || object.visiblePixels == 0))
            }
            if scene.isCrowd {
                // A crowd has at least two people whose boxes overlap at IoU > 0.3.
                let people = scene.objects.filter { $0.sceneClass == .person }.map(\.box)
                let overlapping = people.indices.contains { i in
                    people.indices.contains { j in
                        guard i != j else { return false }
                        let (p, q) = (people[i], people[j])
                        let w = max(0, min(p[2], q[2]) - max(p[0], q[0])), h = max(0, min(p[3], q[3]) - max(p[1], q[1]))
                        let inter = w * h
                        return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter) > 0.3
                    }
                }
                #expect(overlapping)
            }
        }
        #expect(crowd > 5 && sparse > 5)
    }

    @Test func writesACOCODatasetThatReadsBack() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("odam-synth-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let generator = SceneGenerator(width: 96, height: 80)
        let objects = try SyntheticDataset.write(directory: directory, count: 6, seed: 2, generator: generator)
        let coco = try COCOAnnotations(contentsOf: directory + "/annotations.json")
        #expect(coco.images.count == 6 && coco.annotations.count == objects)
        #expect(Set(coco.categories.values) == ["person", "car", "sign"])
        let first = try ImageCodec().decode(contentsOf: directory + "/" + coco.images[0].fileName)
        #expect(first == generator.scene(index: 0, seed: 2).image, "the PNG holds the generated pixels")
        for annotation in coco.annotations {
            guard case .runLength(let counts, let height, let width) = annotation.segmentation else {
                Issue.record("annotation \(annotation.id) lacks its RLE mask")
                continue
            }
            #expect(height == 80 && width == 96 && counts.reduce(0, +) == 80 * 96)
            #expect(annotation.ignore == annotation.isCrowd)
        }
    }
}
