import Detection
import Engine
import Explain
import TestSupport
import Testing

/// The explanation metrics against NumPy (`Tools/make_metric_fixtures.py`).
struct ExplanationMetricsTests {
    static let fixtures = try! FixtureTensors(path: fixturePath("metrics.safetensors", bundle: .module))

    @Test(arguments: 0..<6)
    func metricsMatchNumPy(_ index: Int) {
        let f = Self.fixtures
        let map = f.tensor("\(index).map"), boxes = f.tensor("\(index).boxes").scalars
        let height = map.shape[0], width = map.shape[1]
        let mask = f.indices("\(index).mask").values.map { $0 != 0 }
        let expected = f.tensor("\(index).metrics").scalars.map(Double.init)
        let box = Box(boxes[0..<4])
        let others = [1, 2].map { ExplanationMetrics.boxMask(Box(boxes[(4 * $0)..<(4 * $0 + 4)]), height: height, width: width) }
        let ours: [Double] =
            [
                ExplanationMetrics.pointingHit(map, box: box) ? 1 : 0,
                ExplanationMetrics.energy(map, region: ExplanationMetrics.boxMask(box, height: height, width: width)),
                ExplanationMetrics.energy(map, region: mask),
                ExplanationMetrics.compactness(map, box: box),
                ExplanationMetrics.discrimination(
                    map, target: ExplanationMetrics.boxMask(box, height: height, width: width), others: others),
            ]
            + ExplanationMetrics.visualExplanationAccuracy(map, mask: mask)
        for (k, (a, b)) in zip(ours, expected).enumerated() {
            #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "metric \(k): \(a) vs \(b)")
        }
    }

    @Test func polygonRasterizationFillsATriangle() {
        let mask = ExplanationMetrics.polygonMask([[1, 1, 8, 1, 1, 8]], height: 10, width: 10)
        #expect(mask[2 * 10 + 2] && !mask[7 * 10 + 7] && !mask[0])
        #expect(mask.filter { $0 }.count > 15 && mask.filter { $0 }.count < 35)
    }
}
