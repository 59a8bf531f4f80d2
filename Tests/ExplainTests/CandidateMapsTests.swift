import Detection
import Engine
import Explain
import Foundation
import TestSupport
import Testing
import Vision

/// The sparse candidate maps that Odam-NMS compares, against resizing whole level maps.
struct CandidateMapsTests {
    @Test func sparseMapsEqualResizedLevelMaps() throws {
        let detector = try FastPathAgreementTests.detector()
        let image = try ImageCodec().decode(contentsOf: sampleImagePath("coffee.png")).tensor()
        let (trace, results) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
            var timings = StageTimings()
            return detector.forward(detector.transform.batch([image]), timings: &timings)
        }
        let result = results[0]
        // Candidates on every level, near the borders too.
        let byLevel = Dictionary(grouping: result.candidates.indices) { result.candidates[$0].level }
        let predictions = byLevel.keys.sorted().flatMap { level in
            let members = byLevel[level]!
            return stride(from: 0, to: members.count, by: max(members.count / 12, 1)).map { members[$0] }
        }
        #expect(Set(predictions.map { result.candidates[$0].level }).count >= 3)
        let head = FCOSReversedHead(detector: detector)
        let sparse = head.candidateMaps(trace: trace, result: result, predictions: predictions)
        let grid = FCOSReversedHead.candidateGrid(inputSize: result.inputSize)
        #expect(sparse.gridHeight == result.inputSize.height / 16 && sparse.gridWidth == result.inputSize.width / 16)
        let whole = head.explain(trace: trace, result: result, predictions: predictions, targets: [.logit])
        var worst: Float = 0
        for (i, maps) in whole.enumerated() {
            let raw = maps[.logit]!.raw
            let resized = raw.reshaped([1, 1, raw.shape[0], raw.shape[1]])
                .interpolated(size: (grid.height, grid.width), mode: .bilinear(alignCorners: false)).scalars
            let norm = max(resized.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            for (a, b) in zip(sparse.dense(i), resized.map { $0 / norm }) { worst = max(worst, abs(a - b)) }
            // Support: the rectangle holds every nonzero cell.
            #expect(resized.filter { $0 != 0 }.count <= sparse.rectangles[i].rows * sparse.rectangles[i].columns)
        }
        #expect(worst <= 1e-6, "largest difference \(worst)")
        // Correlations over rectangles equal dense dot products.
        for (i, j) in [(0, 1), (0, 5), (3, 40), (10, 11)] {
            let dense = zip(sparse.dense(i), sparse.dense(j)).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            #expect(abs(sparse.correlation(i, j) - dense) <= 1e-5)
        }
    }

    @Test func mapsAreClippedToTheGridAndNormalized() {
        var maps = CandidateMaps(gridHeight: 4, gridWidth: 5)
        maps.append([1, 2, 3, 4, 5, 6, 7, 8, 9], over: .init(row: -1, column: 3, rows: 3, columns: 3))
        #expect(maps.rectangles[0] == .init(row: 0, column: 3, rows: 2, columns: 2))
        let dense = maps.dense(0)
        let kept: [Float] = [4, 5, 7, 8]
        let norm = kept.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(dense[3] == 4 / norm && dense[4] == 5 / norm && dense[8] == 7 / norm && dense[9] == 8 / norm)
        maps.append([0, 0, 0, 0], over: .init(row: 0, column: 0, rows: 2, columns: 2))
        #expect(maps.correlation(0, 1) == 0)
    }
}
