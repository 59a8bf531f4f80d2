import Detection
import Foundation
import TestSupport
import Testing

/// COCO AP/AR against pycocotools' COCOeval, and the crowd metrics against the CrowdDet toolkit's definitions, from
/// `Tools/make_eval_fixtures.py`.
struct DetectionMetricsTests {
    struct Expected: Decodable {
        struct COCO: Decodable { let stats: [Double] }
        struct Crowd: Decodable {
            let ap50: Double
            let mr: Double
            let ji: Double
            let crowd_recall: Double
            let sparse_recall: Double
            let crowd_count: Int
            let sparse_count: Int
        }
        let coco: COCO
        let crowd: Crowd
    }

    static func path(_ name: String) -> String { fixturePath(name, bundle: .module) }
    static let expected = try! JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: path("eval_expected.json"))))

    @Test func cocoEvaluationMatchesPycocotools() throws {
        let groundTruth = try COCOAnnotations(contentsOf: Self.path("eval_coco_gt.json"))
        let results = try COCOResult.load(contentsOf: Self.path("eval_coco_results.json"))
        let summary = try COCOEvaluation().evaluate(groundTruth: groundTruth, results: results)
        #expect(summary.stats.count == 12)
        for (index, (ours, theirs)) in zip(summary.stats, Self.expected.coco.stats).enumerated() {
            #expect(abs(ours - theirs) <= 1e-6, "stats[\(index)]: \(ours), pycocotools \(theirs)")
        }
    }

    @Test func resultsForAnUnknownImageAreRefused() throws {
        let groundTruth = try COCOAnnotations(contentsOf: Self.path("eval_coco_gt.json"))
        let stray = COCOResult(imageID: 999, categoryID: 1, bbox: [0, 0, 10, 10], score: 0.5)
        #expect(throws: ModelError.self) { try COCOEvaluation().evaluate(groundTruth: groundTruth, results: [stray]) }
    }

    @Test func crowdMetricsMatchTheToolkitDefinitions() throws {
        let annotations = try CrowdHumanFile.readAnnotations(contentsOf: Self.path("eval_crowd.odgt"))
        let detections = try CrowdHumanFile.readDetections(contentsOf: Self.path("eval_crowd_results.json"))
        let metrics = CrowdEvaluation.evaluate(try CrowdHumanFile.images(annotations: annotations, detections: detections))
        let e = Self.expected.crowd
        #expect(abs(metrics.ap50 - e.ap50) <= 1e-9, "AP50 \(metrics.ap50), expected \(e.ap50)")
        #expect(abs(metrics.missRate - e.mr) <= 1e-9, "MR \(metrics.missRate), expected \(e.mr)")
        #expect(abs(metrics.jaccardIndex - e.ji) <= 1e-9, "JI \(metrics.jaccardIndex), expected \(e.ji)")
        #expect(metrics.crowdCount == e.crowd_count && metrics.sparseCount == e.sparse_count)
        #expect(abs(metrics.crowdRecall - e.crowd_recall) <= 1e-12 && abs(metrics.sparseRecall - e.sparse_recall) <= 1e-12)
    }

    /// The matching is maximum, not greedy: a greedy pass taking detection 0's best person would leave detection 1
    /// without a partner.
    @Test func jaccardMatchingIsMaximum() {
        let people = [Box<Double>(0, 0, 10, 10), Box<Double>(4, 0, 14, 10)]
        let detections = [Box<Double>(2, 0, 12, 10), Box<Double>(0, 0, 10, 10)]
        let image = CrowdImage(
            width: 100, height: 100, groundTruth: people, ignored: [false, false], detections: detections, scores: [0.9, 0.8])
        // Detection 0 overlaps both people at IoU ≥ 0.5; detection 1 only person 0.
        #expect(CrowdEvaluation.evaluate([image]).jaccardIndex > 0.99)
    }

    @Test func malformedOdgtLinesNameTheLine() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("odam-bad-\(getpid()).odgt")
        try "{\"ID\": \"a\", \"gtboxes\": []}\nnot json\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect {
            try CrowdHumanFile.readAnnotations(contentsOf: file.path)
        } throws: { error in
            "\(error)".contains(":2: not a JSON object")
        }
    }
}
