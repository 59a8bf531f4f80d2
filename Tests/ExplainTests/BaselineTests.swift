import Detection
import Engine
import Explain
import Foundation
import NN
import TestSupport
import Testing
import Vision

/// D-RISE, deletion/insertion curves and the randomization sanity check.
struct BaselineTests {
    static func setup() throws -> (FCOS, Tensor, ForwardTrace, ImageDetections) {
        let detector = try DetectionEvaluationTests.detectorWithBoxes()
        let image = try ImageCodec().decode(contentsOf: sampleImagePath("coffee.png")).tensor()
        let (trace, results) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
            var timings = StageTimings()
            return detector.forward(detector.transform.batch([image]), timings: &timings)
        }
        return (detector, image, trace, results[0])
    }

    @Test func driseWeighsAMaskByTheBestMatch() {
        let target = (box: Box<Float>(10, 10, 50, 50), vector: [Float](arrayLiteral: 0.6, 0.8))
        let same = DRISE.weights(targets: [target], candidates: [target])
        #expect(abs(same[0] - 1) < 1e-6)
        // Half the box and an orthogonal class vector.
        let shifted = (Box<Float>(30, 10, 70, 50), [Float](arrayLiteral: 0.6, 0.8))
        let other = (Box<Float>(10, 10, 50, 50), [Float](arrayLiteral: 0.8, -0.6))
        let mixed = DRISE.weights(targets: [target], candidates: [shifted, other])
        #expect(abs(mixed[0] - 1.0 / 3) < 1e-6, "IoU 1/3 with the same class beats IoU 1 with another class")
    }

    /// With masks that keep everything, every mask sees the unmasked image, whose best match to each prediction is
    /// itself: the map is the mask count everywhere.
    @Test func driseWithFullMasksIsUniform() throws {
        let (detector, image, trace, result) = try Self.setup()
        let predictions = Array(result.detections.prefix(3).map(\.candidate))
        let maps = DRISE(maskCount: 3, keepProbability: 1.1).explain(
            detector: detector, image: image, trace: trace, result: result, predictions: predictions)
        #expect(maps.count == 3)
        for map in maps {
            #expect(map.raw.shape == [image.shape[1], image.shape[2]])
            #expect(map.raw.scalars.allSatisfy { abs($0 - 3) < 1e-4 }, "range \(map.raw.scalars.min()!)...\(map.raw.scalars.max()!)")
        }
        let random = DRISE(maskCount: 4, seed: 3).explain(
            detector: detector, image: image, trace: trace, result: result, predictions: predictions)
        let again = DRISE(maskCount: 4, seed: 3).explain(
            detector: detector, image: image, trace: trace, result: result, predictions: predictions)
        #expect(random[0].raw.scalars == again[0].raw.scalars, "reproducible for a seed")
        #expect(Set(random[0].raw.scalars).count > 10, "random masks vary over the image")
    }

    @Test func deletionAndInsertionCurves() throws {
        let (detector, image, _, result) = try Self.setup()
        let detection = try #require(result.detections.first)
        let original = FaithfulnessCurves.score(detector: detector, image: image, box: detection.box, label: detection.label)
        #expect(abs(original - Double(detection.score)) < 1e-6, "the detection matches itself")
        // A map that points at the box: deleting there should hurt the score.
        let height = image.shape[1], width = image.shape[2]
        let map = Tensor(shape: [height, width]) { index in
            let y = Float(index / width), x = Float(index % width)
            let inside = x >= detection.box[0] && x < detection.box[2] && y >= detection.box[1] && y < detection.box[3]
            return inside ? 1 : 0
        }
        let curves = FaithfulnessCurves(seed: 1).curves(
            detector: detector, image: image, map: map, box: detection.box, label: detection.label)
        #expect(curves.deletion.count == 11 && curves.insertion.count == 11)
        #expect(curves.deletion[0] == 1 && curves.insertion[0] == 0)
        #expect(curves.deletionAUC >= 0 && curves.insertionAUC >= 0)
        // Inserting the whole box back restores at least part of the object.
        #expect(curves.insertion[10] > 0)
    }

    @Test func spearmanRankCorrelation() {
        let a = Tensor(shape: [4, 4], values: (0..<16).map(Float.init))
        #expect(abs(RandomizationCheck.spearman(a, a, step: 1) - 1) < 1e-12)
        #expect(abs(RandomizationCheck.spearman(a, Tensor(shape: [4, 4], values: (0..<16).map { Float(-$0) }), step: 1) + 1) < 1e-12)
        // Monotone transforms keep the ranks.
        #expect(abs(RandomizationCheck.spearman(a, Tensor(shape: [4, 4], values: (0..<16).map { expf(Float($0)) }), step: 1) - 1) < 1e-12)
    }

    @Test func randomizedHeadKeepsTheBackbone() throws {
        let base = Repository.path("Tests/DetectionTests/Fixtures/fcos_small")
        let spec = try ModelSpec.resolve(base + ".json")
        let trained = try spec.load(weights: base + ".pth")
        let randomized = try RandomizationCheck.headRandomized(trained, spec: spec)
        let before = Dictionary(uniqueKeysWithValues: trained.namedParameters.map { ($0.name, $0.parameter.value.scalars) })
        var headChanged = 0
        for (name, parameter) in randomized.namedParameters {
            if name.hasPrefix("backbone.") {
                #expect(parameter.value.scalars == before[name]!, "\(name) kept")
            } else if parameter.value.scalars != before[name]! {
                headChanged += 1
            }
        }
        #expect(headChanged > 4)
    }
}
