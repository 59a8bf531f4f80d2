import DefaultModel
import Detection
import Engine
import Explain
import Foundation
import NN
import TestSupport
import Testing
import Vision

/// The runner's default map path (`auto`): FCOS's reversed head only on levels whose error estimates are under the
/// limit, checked by samples that include the highest estimates; exact maps everywhere else. What it returns is
/// compared with exact maps of every prediction.
struct AutoMapPathTests {
    /// Predictions spread over each of `levels` of `trace`'s pyramid, `perLevel` on each.
    static func candidates(_ trace: ForwardTrace, levels: [Int], perLevel: Int, classes: Int) -> [Candidate] {
        levels.flatMap { level in
            let height = trace.pyramid[level].shape[2], width = trace.pyramid[level].shape[3]
            return (0..<perLevel).map { i in
                let cell = Int((Double(i + 1) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1) * Double(height * width))
                return Candidate(
                    box: Box(0, 0, 1, 1), score: 0.5, label: (7 * i + 1) % classes, level: level, row: cell / width, column: cell % width,
                    anchor: 0)
            }
        }
    }

    static func forward(_ detector: FCOS, photo: String) throws -> (ForwardTrace, ImageDetections) {
        let image = try ImageCodec().decode(contentsOf: sampleImagePath(photo)).tensor()
        return withoutGradients {
            var timings = StageTimings()
            let output = detector.forward(detector.transform.batch([image]), keeping: .towerLayers, timings: &timings)
            return (output.trace, output.results[0])
        }
    }

    /// Every map `maker` returns for `predictions` against the exact path's: Pearson r of each.
    static func agreementWithExact(_ maker: DetectorMaps, detector: FCOS, trace: ForwardTrace, result: ImageDetections) -> (
        r: [Float], agreement: [VerifiedExplainer.LevelAgreement]
    ) {
        let predictions = Array(result.candidates.indices)
        let (maps, agreement) = maker.maps(trace: trace, result: result, predictions: predictions, targets: [.logit])
        let exact = FCOSExplainer(detector: detector).explain(trace: trace, result: result, predictions: predictions, targets: [.logit])
        return (zip(maps, exact).map { VerifiedExplainer.pearson($0[.logit]!.raw, $1[.logit]!.raw) }, agreement)
    }

    /// On the shipped synthetic-scene FCOS (2 channels per GroupNorm group) every level's estimate exceeds the limit,
    /// so `auto` makes every map exactly.
    @Test func theShippedFCOSGetsExactMapsOnEveryLevel() throws {
        let files = try DefaultModel.files(.odamTrain)
        let detector = try ModelSpec.resolve(files.spec).load(weights: files.weights) as! FCOS
        var (trace, result) = try Self.forward(detector, photo: "coffee.png")
        result.candidates = Self.candidates(trace, levels: Array(trace.pyramid.indices), perLevel: 3, classes: detector.classCount)
        let maker = try DetectorMaps(detector: detector, path: .auto)
        #expect(maker.effectivePath == .auto && maker.traceExtras == .towerLayers)
        let (r, agreement) = Self.agreementWithExact(maker, detector: detector, trace: trace, result: result)
        #expect(agreement.count == 5 && agreement.allSatisfy { $0.exact == $0.predictions && !$0.recomputed }, "\(agreement)")
        #expect(r.allSatisfy { $0 > 0.99999 }, "\(r)")
        // Other detectors: auto is the exact path.
        let ssd = try ModelSpec.resolve(try DefaultModel.files(.ssdlitePerson).spec).load(
            weights: try DefaultModel.files(.ssdlitePerson).weights)
        #expect(try DetectorMaps(detector: ssd, path: .auto).effectivePath == .exact)
    }

    /// On FCOS-R50 (random weights) at 800x1216, the large levels keep the reversed head's maps (verified), the small
    /// ones are exact, and every map agrees with the exact one at r ≥ 0.999.
    @Test func wideModelsKeepVerifiedMapsOnLargeLevels() throws {
        var spec = try ModelSpec.resolve("fcos_resnet50_fpn")
        (spec.minSize, spec.maxSize) = (800, 1216)
        let detector = try spec.build(classCount: 91) as! FCOS
        var (trace, result) = try Self.forward(detector, photo: "rocket.jpg")
        // P3 and P4 (estimates 0.02-0.04 on this model) and P6 (above the limit), three predictions each.
        result.candidates = Self.candidates(trace, levels: [0, 1, 3], perLevel: 3, classes: detector.classCount)
        let (r, agreement) = Self.agreementWithExact(
            try DetectorMaps(detector: detector, path: .auto), detector: detector, trace: trace, result: result)
        #expect(r.allSatisfy { $0 >= 0.999 }, "\(r)")
        let byLevel = Dictionary(uniqueKeysWithValues: agreement.map { ($0.level, $0) })
        #expect(byLevel[3]?.exact == 3, "P6 is computed exactly: \(agreement)")
        #expect(
            [0, 1].contains { byLevel[$0]!.exact == 0 && !byLevel[$0]!.recomputed && byLevel[$0]!.sampled >= 2 },
            "a large level keeps the reversed head's maps, checked by samples: \(agreement)")
    }
}
