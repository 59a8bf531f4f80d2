import Detection
import Engine
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// NMS against torchvision, Odam-NMS and Soft-NMS against the NumPy references of `Tools/make_nms_fixtures.py`.
struct SuppressionTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let kind: String
        let threshold: Float?
        let iou: Float?
        let low: Float?
        let high: Float?
        let decay: String?
        let parameter: Float?
        var testDescription: String { name }
    }

    static let fixtures = try! FixtureTensors(path: fixturePath("nms.safetensors", bundle: .module))
    static let cases: [Case] = try! JSONDecoder().decode(
        [Case].self, from: Data(contentsOf: URL(fileURLWithPath: fixturePath("nms.json", bundle: .module))))

    @Test(arguments: cases)
    func matchesReference(_ c: Case) {
        let f = Self.fixtures
        let boxes = f.tensor("\(c.name).boxes").scalars, scores = f.tensor("\(c.name).scores").scalars
        let labels = f.indices("\(c.name).labels").values
        switch c.kind {
        case "nms":
            #expect(BoxOps.nms(boxes, scores: scores, threshold: c.threshold!) == f.indices("\(c.name).keep").values)
            #expect(
                BoxOps.batchedNMS(boxes, scores: scores, categories: labels, threshold: c.threshold!)
                    == f.indices("\(c.name).batched").values)
        case "odam":
            let nms = OdamNMS(iouThreshold: c.iou!, lowCorrelation: c.low!, highCorrelation: c.high!, maximumDetections: 500)
            let maps = f.tensor("\(c.name).maps")
            #expect(
                nms(boxes: boxes, scores: scores, labels: labels, maps: maps.scalars, dimension: maps.shape[1])
                    == f.indices("\(c.name).keep").values)
        default:
            let decay: SoftNMS.Decay = c.decay == "linear" ? .linear(iouThreshold: c.parameter!) : .gaussian(sigma: c.parameter!)
            let (kept, keptScores) = SoftNMS(decay: decay, scoreThreshold: c.threshold!)(boxes: boxes, scores: scores, labels: labels)
            #expect(kept == f.indices("\(c.name).keep").values)
            let expected = f.tensor("\(c.name).kept_scores")
            #expect(mismatch(Tensor(shape: [keptScores.count], values: keptScores), expected, rtol: 1e-5, atol: 1e-6) == nil)
        }
    }

    /// A crowd: two people overlapping at IoU 0.6 with different explanations, and a duplicate of the first at IoU
    /// 0.3 with nearly the same explanation.
    @Test func odamNMSSeparatesACrowdThatNMSMerges() {
        let crowd: [Float] = [
            100, 100, 200, 300,  // person A
            125, 100, 225, 300,  // person B: IoU with A = 75·200 / (2·100·200 − 75·200) = 0.6
            100, 200, 200, 400,  // a duplicate of A shifted down: IoU 1/3 with A
        ]
        let scores: [Float] = [0.9, 0.8, 0.7]
        let labels = [0, 0, 0]
        // Maps over 4 regions: A and its duplicate look at region 0, B at region 2.
        let maps: [Float] = [1, 0.1, 0, 0, 0, 0.1, 1, 0, 0.98, 0.12, 0, 0.01]
        let iouAB = BoxOps.iou(Array(crowd[0..<4]), Array(crowd[4..<8]))
        let iouAD = BoxOps.iou(Array(crowd[0..<4]), Array(crowd[8..<12]))
        #expect(abs(iouAB - 0.6) < 1e-4 && abs(iouAD - 1.0 / 3) < 1e-4)
        let plain = BoxOps.batchedNMS(crowd, scores: scores, categories: labels, threshold: 0.5)
        let odam = OdamNMS.fcos(boxes: crowd, scores: scores, labels: labels, maps: maps, dimension: 4)
        #expect(plain == [0, 2], "NMS drops the overlapped person B and keeps the low-IoU duplicate")
        #expect(odam == [0, 1], "Odam-NMS keeps person B and removes the duplicate")
    }

    /// A crowd of five people in a row, each overlapping the next at IoU 0.6, with maps that look at each person's
    /// centre. Every person has a true candidate and a duplicate shifted down (IoU 1/3 with it, the same map).
    /// NMS at 0.5 drops every other person and keeps all duplicates; Odam-NMS keeps every person and drops every
    /// duplicate, and the crowd metrics say so.
    @Test func odamNMSRecoversACrowd() {
        let people = (0..<5).map { k -> [Float] in [100 + 25 * Float(k), 100, 200 + 25 * Float(k), 300] }
        var boxes: [Float] = [], scores: [Float] = [], labels: [Int] = []
        var maps = CandidateMaps(gridHeight: 100, gridWidth: 100)
        func add(_ box: [Float], score: Float, lookingAt person: [Float]) {
            boxes += box
            scores.append(score)
            labels.append(1)
            // A Gaussian on the person's centre, on a 5-pixel grid.
            let (cx, cy) = ((person[0] + person[2]) / 10, (person[1] + person[3]) / 10)
            var values: [Float] = []
            for y in 0..<100 {
                for x in 0..<100 {
                    let dx = Float(x) - cx, dy = Float(y) - cy
                    values.append(expf(-(dx * dx + dy * dy) / 2))
                }
            }
            maps.append(values, over: .init(row: 0, column: 0, rows: 100, columns: 100))
        }
        for (k, person) in people.enumerated() { add(person, score: 0.9 - 0.05 * Float(k), lookingAt: person) }
        for (k, person) in people.enumerated() {
            add([person[0], person[1] + 100, person[2], person[3] + 100], score: 0.5 - 0.05 * Float(k), lookingAt: person)
        }
        let plain = Set(BoxOps.batchedNMS(boxes, scores: scores, categories: labels, threshold: 0.5))
        let odam = Set(OdamNMS.fcos(boxes: boxes, scores: scores, labels: labels, maps: maps))
        #expect(!plain.contains(1) && !plain.contains(3), "NMS drops overlapped people")
        #expect(plain.contains(5), "NMS keeps a low-IoU duplicate")
        #expect(odam == Set(0..<5), "Odam-NMS keeps every person and no duplicate")
        func metrics(_ kept: Set<Int>) -> CrowdMetrics {
            let order = kept.sorted()
            return CrowdEvaluation.evaluate([
                CrowdImage(
                    width: 640, height: 480,
                    groundTruth: people.map { Box<Double>(Double($0[0]), Double($0[1]), Double($0[2]), Double($0[3])) },
                    ignored: [Bool](repeating: false, count: 5),
                    detections: order.map {
                        Box<Double>(
                            Double(boxes[4 * $0]), Double(boxes[4 * $0 + 1]), Double(boxes[4 * $0 + 2]), Double(boxes[4 * $0 + 3]))
                    },
                    scores: order.map { Double(scores[$0]) })
            ])
        }
        let (plainMetrics, odamMetrics) = (metrics(plain), metrics(odam))
        #expect(odamMetrics.crowdRecall == 1 && plainMetrics.crowdRecall < 1)
        #expect(odamMetrics.jaccardIndex > plainMetrics.jaccardIndex)
    }
}
