public import Detection
import Engine
import Foundation
import NN
import Vision

/// Odam-NMS against the whole NMS curve, on a held-out protocol: every threshold is chosen on a tuning split and the
/// choice is scored on a test split, with bootstrap 95% intervals over the test images.
///
/// For each T_iou, NMS; Odam-NMS with the detector's default T_l/T_h and with the (T_l, T_h) of the grid that has the
/// best Jaccard index on the tuning split at that T_iou (the paper's protocol: one T_iou for both); and Soft-NMS
/// (Gaussian) with the σ that is best on tuning. Then each method at its own best setting on tuning, compared on test
/// (the baseline at its best setting). Differences between two methods are paired: the same resampled images.
public struct NMSSweep {
    public var ious: [Float] = [0.4, 0.5, 0.6, 0.7, 0.8]
    public var lows: [Float] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    public var highs: [Float] = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    public var softSigmas: [Float] = [0.1, 0.3, 0.5, 0.7, 0.9, 1.2, 1.5]
    /// Soft-NMS's final score threshold.
    public var softScoreThreshold: Float = 0.05
    public var resamples = 1000
    public var seed: UInt64 = 1
    public var evaluation: DetectionEvaluation

    public init(evaluation: DetectionEvaluation) { self.evaluation = evaluation }

    /// Odam-NMS's candidate maps: each variant is tuned and scored as its own Odam-NMS (the official code's class
    /// logit on input/16 unless told otherwise), the maps of all made from one explanation per target.
    public var variants: [CandidateVariant] = [.standard]

    /// One image's candidates with their maps in each variant, and its ground truth. The maps' correlations are
    /// cached for one variant at a time (`correlations`), each computed the first time it is asked for.
    struct Prepared {
        var scored: ImageDetections
        var mapsByVariant: [CandidateMaps]
        var correlations: CorrelationCache?
        var crowd: CrowdImage
    }

    /// Pairwise correlations of one image's candidate maps, each computed the first time it is asked for.
    final class CorrelationCache {
        let maps: CandidateMaps
        var values: [Float]

        init(_ maps: CandidateMaps) {
            self.maps = maps
            values = [Float](repeating: .nan, count: maps.count * maps.count)
        }

        func callAsFunction(_ i: Int, _ j: Int) -> Float {
            let index = i * maps.count + j
            if values[index].isNaN {
                values[index] = maps.correlation(i, j)
                values[j * maps.count + i] = values[index]
            }
            return values[index]
        }
    }

    /// A method with its settings.
    public enum Setting: Sendable, Equatable, Codable {
        case nms(iou: Float)
        /// Odam-NMS on the candidate maps of `variant`.
        case odam(iou: Float, low: Float, high: Float, variant: CandidateVariant = .standard)
        case softNMS(sigma: Float)

        public var description: String {
            switch self {
            case .nms(let iou): String(format: "NMS T_iou %.2f", iou)
            case .odam(let iou, let low, let high, let variant):
                String(format: "Odam-NMS T_iou %.2f T_l %.2f T_h %.2f", iou, low, high)
                    + (variant == .standard ? "" : " (\(variant))")
            case .softNMS(let sigma): String(format: "Soft-NMS σ %.2f", sigma)
            }
        }
    }

    /// A metric's value on the test split and its bootstrap 95% interval (2.5th and 97.5th percentiles).
    public struct Estimate: Sendable, Codable, Equatable {
        public var value: Double
        public var low: Double
        public var high: Double
    }

    /// The crowd metrics of one setting on the test split.
    public struct Scored: Sendable, Codable {
        public var setting: Setting
        /// Why this setting is in the table: `curve` (its T_iou), `default` (the detector's T_l/T_h), `best` (best on
        /// tuning over everything of its method).
        public var role: String
        public var tuningJaccard: Double
        public var ap50: Estimate
        public var missRate: Estimate
        public var jaccard: Estimate
        /// Recall of crowd and sparse people by the detections above the best-JI score threshold (Table 7).
        public var crowdRecall: Estimate
        public var sparseRecall: Estimate
    }

    /// A paired difference on the test split (first minus second), with its bootstrap interval.
    public struct Difference: Sendable, Codable {
        public var first: Setting
        public var second: Setting
        public var jaccard: Estimate
        public var missRate: Estimate
        public var ap50: Estimate
    }

    public struct Report: Sendable, Codable {
        public var tuningImages: Int
        public var testImages: Int
        public var resamples: Int
        public var rows: [Scored]
        public var differences: [Difference]
        public var failures: [String]
    }

    /// Runs `detector` with candidate maps on both splits, tunes on `tuning` and scores on `test`.
    public func run(
        detector: any Detector, tuning: (DetectionEvaluation.GroundTruth, String), test: (DetectionEvaluation.GroundTruth, String),
        mapPath: MapPath = .auto
    ) throws -> Report {
        var failures: [String] = []
        func prepare(_ split: (DetectionEvaluation.GroundTruth, String)) throws -> [Prepared] {
            var prepared: [Prepared] = []
            let passes = try evaluation.forEachPass(
                detector: detector, groundTruth: split.0, imageDirectory: split.1, mapPath: mapPath, variants: variants
            ) { entry, image, pass in
                prepared.append(
                    Prepared(
                        scored: pass.scored, mapsByVariant: pass.mapsByVariant, correlations: nil,
                        crowd: evaluation.crowdImage(entry, width: image.width, height: image.height, detections: [])))
            }
            failures += passes.failures
            return prepared
        }
        var tuningImages = try prepare(tuning), testImages = try prepare(test)
        let defaults = OdamNMS.defaults(for: detector)
        func jaccard(_ setting: Setting, _ images: [Prepared]) -> Double { CrowdEvaluation.metrics(scores(setting, images)).jaccardIndex }

        // Test: every chosen setting on the same resampled images.
        var random = RandomNumbers(seed: seed)
        let draws = (0..<resamples).map { _ in (0..<testImages.count).map { _ in Int(random.next() % UInt64(testImages.count)) } }
        var testScores: [Setting: [CrowdImageScore]] = [:]
        var resampled: [Setting: [CrowdMetrics]] = [:]
        func scoreOnTest(_ setting: Setting) {
            guard testScores[setting] == nil else { return }
            let perImage = scores(setting, testImages)
            testScores[setting] = perImage
            resampled[setting] = draws.map { draw in CrowdEvaluation.metrics(draw.map { perImage[$0] }) }
        }

        // Tuning: per T_iou NMS and, for each map variant, Odam-NMS's best (T_l, T_h); Soft-NMS's best σ; each method's
        // best overall. Odam-NMS settings are scored on test while their variant's correlations are cached (one
        // variant's correlations at a time: they take candidates² floats per image).
        var chosen: [(setting: Setting, role: String, tuning: Double)] = []
        var bestNMS: (Setting, Double)? = nil, bestOdam: (Setting, Double)? = nil
        var odamRows: [Float: [(setting: Setting, role: String, tuning: Double)]] = [:]
        for (v, variant) in variants.enumerated() {
            for i in tuningImages.indices { tuningImages[i].correlations = CorrelationCache(tuningImages[i].mapsByVariant[v]) }
            for i in testImages.indices { testImages[i].correlations = CorrelationCache(testImages[i].mapsByVariant[v]) }
            for iou in ious {
                let standard = Setting.odam(iou: iou, low: defaults.lowCorrelation, high: defaults.highCorrelation, variant: variant)
                odamRows[iou, default: []].append((standard, "default", jaccard(standard, tuningImages)))
                scoreOnTest(standard)
                var best: (Setting, Double)? = nil
                for low in lows {
                    for high in highs where high >= low {
                        let setting = Setting.odam(iou: iou, low: low, high: high, variant: variant)
                        let value = jaccard(setting, tuningImages)
                        if best == nil || value > best!.1 { best = (setting, value) }
                    }
                }
                odamRows[iou, default: []].append((best!.0, "curve", best!.1))
                scoreOnTest(best!.0)
                if bestOdam == nil || best!.1 > bestOdam!.1 { bestOdam = best }
            }
        }
        for i in tuningImages.indices { tuningImages[i].correlations = nil }
        for i in testImages.indices { testImages[i].correlations = nil }
        for iou in ious {
            let nms = Setting.nms(iou: iou)
            let nmsJaccard = jaccard(nms, tuningImages)
            chosen.append((nms, "curve", nmsJaccard))
            if bestNMS == nil || nmsJaccard > bestNMS!.1 { bestNMS = (nms, nmsJaccard) }
            chosen += odamRows[iou] ?? []
        }
        let soft = softSigmas.map { (Setting.softNMS(sigma: $0), jaccard(.softNMS(sigma: $0), tuningImages)) }.max { $0.1 < $1.1 }!
        chosen.append((soft.0, "best", soft.1))
        chosen.append((bestNMS!.0, "best", bestNMS!.1))
        chosen.append((bestOdam!.0, "best", bestOdam!.1))
        for (setting, _, _) in chosen { scoreOnTest(setting) }

        func estimate(_ value: Double, _ samples: [Double]) -> Estimate {
            let sorted = samples.sorted()
            guard !sorted.isEmpty else { return Estimate(value: value, low: value, high: value) }
            func quantile(_ q: Double) -> Double { sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.down))))] }
            return Estimate(value: value, low: quantile(0.025), high: quantile(0.975))
        }
        let rows = chosen.map { setting, role, tuning -> Scored in
            let point = CrowdEvaluation.metrics(testScores[setting]!), samples = resampled[setting]!
            return Scored(
                setting: setting, role: role, tuningJaccard: tuning, ap50: estimate(point.ap50, samples.map(\.ap50)),
                missRate: estimate(point.missRate, samples.map(\.missRate)),
                jaccard: estimate(point.jaccardIndex, samples.map(\.jaccardIndex)),
                crowdRecall: estimate(point.crowdRecallAtBestJaccard, samples.map(\.crowdRecallAtBestJaccard)),
                sparseRecall: estimate(point.sparseRecallAtBestJaccard, samples.map(\.sparseRecallAtBestJaccard)))
        }
        func difference(_ first: Setting, _ second: Setting) -> Difference {
            let a = CrowdEvaluation.metrics(testScores[first]!), b = CrowdEvaluation.metrics(testScores[second]!)
            let sa = resampled[first]!, sb = resampled[second]!
            func paired(_ metric: (CrowdMetrics) -> Double) -> Estimate {
                estimate(metric(a) - metric(b), zip(sa, sb).map { metric($0) - metric($1) })
            }
            return Difference(
                first: first, second: second, jaccard: paired(\.jaccardIndex), missRate: paired(\.missRate), ap50: paired(\.ap50))
        }
        // Odam-NMS (tuned) against NMS at each T_iou, then each at its best.
        var differences = rows.filter { $0.role == "curve" }.compactMap { row -> Difference? in
            guard case .odam(let iou, _, _, _) = row.setting else { return nil }
            return difference(row.setting, .nms(iou: iou))
        }
        differences.append(difference(bestOdam!.0, bestNMS!.0))
        differences.append(difference(bestOdam!.0, soft.0))
        // Each variant's best tuned Odam-NMS against the standard variant's at the same T_iou.
        if variants.count > 1 {
            for iou in ious {
                let tuned = rows.filter { $0.role == "curve" }.compactMap { row -> (Setting, CandidateVariant)? in
                    guard case .odam(let rowIoU, _, _, let variant) = row.setting, rowIoU == iou else { return nil }
                    return (row.setting, variant)
                }
                guard let reference = tuned.first(where: { $0.1 == variants[0] }) else { continue }
                for other in tuned where other.1 != variants[0] { differences.append(difference(other.0, reference.0)) }
            }
        }
        return Report(
            tuningImages: tuningImages.count, testImages: testImages.count, resamples: resamples, rows: rows, differences: differences,
            failures: failures)
    }

    /// Each image's share of the crowd metrics with `setting`'s final detections.
    func scores(_ setting: Setting, _ images: [Prepared]) -> [CrowdImageScore] {
        images.map { image in
            let candidates = image.scored.candidates
            let boxes = candidates.flatMap(\.box), scores = candidates.map(\.score), labels = candidates.map(\.label)
            let chosen: ImageDetections
            switch setting {
            case .nms(let iou): chosen = image.scored.suppressed(by: .nms(iouThreshold: iou), limit: evaluation.detectionsPerImage)
            case .softNMS(let sigma):
                chosen = image.scored.suppressed(
                    by: .softNMS(SoftNMS(decay: .gaussian(sigma: sigma), scoreThreshold: softScoreThreshold)),
                    limit: evaluation.detectionsPerImage)
            case .odam(let iou, let low, let high, _):
                let odam = OdamNMS(
                    iouThreshold: iou, lowCorrelation: low, highCorrelation: high, maximumDetections: evaluation.detectionsPerImage)
                let correlations = image.correlations!
                let kept = odam(boxes: boxes, scores: scores, labels: labels) { correlations($0, $1) }
                chosen = ImageDetections(
                    candidates: candidates, kept: kept, inputSize: image.scored.inputSize, originalSize: image.scored.originalSize)
            }
            let person = chosen.detections.filter { $0.label == evaluation.crowdCategory }
            var crowd = image.crowd
            crowd.detections = person.map { Box<Double>(Double($0.box[0]), Double($0.box[1]), Double($0.box[2]), Double($0.box[3])) }
            crowd.scores = person.map { Double($0.score) }
            return CrowdEvaluation.score(crowd)
        }
    }

    /// The report as text: the curve on test with intervals, then the paired differences.
    public static func table(_ report: Report) -> String {
        func cell(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        func interval(_ e: Estimate) -> String { String(format: "%.3f [%.3f, %.3f]", e.value, e.low, e.high) }
        let width = max(42, (report.rows.map(\.setting.description.count).max() ?? 0) + 2)
        let pairWidth = max(82, (report.differences.map { $0.first.description.count + $0.second.description.count + 5 }.max() ?? 0))
        var lines = [
            "Tuned on \(report.tuningImages) images, scored on \(report.testImages) test images; 95% intervals from \(report.resamples) bootstrap resamples of the test images.",
            "",
            cell("setting", width) + cell("chosen as", 10) + cell("JI tuning", 11) + cell("JI test", 24) + cell("MR⁻² test", 24)
                + cell("AP50 test", 24) + cell("recall crowd", 24) + "recall sparse",
        ]
        for row in report.rows {
            lines.append(
                cell(row.setting.description, width) + cell(row.role, 10) + cell(String(format: "%.3f", row.tuningJaccard), 11)
                    + cell(interval(row.jaccard), 24) + cell(interval(row.missRate), 24) + cell(interval(row.ap50), 24)
                    + cell(interval(row.crowdRecall), 24) + interval(row.sparseRecall))
        }
        lines += ["", "Paired differences on test (first minus second; MR⁻² lower is better):"]
        for difference in report.differences {
            lines.append(
                cell(difference.first.description + " − " + difference.second.description, pairWidth) + "JI " + interval(difference.jaccard)
                    + "  MR⁻² " + interval(difference.missRate) + "  AP50 " + interval(difference.ap50))
        }
        for failure in report.failures { lines.append("skipped: \(failure)") }
        return lines.joined(separator: "\n")
    }
}

extension NMSSweep.Setting: Hashable {}
