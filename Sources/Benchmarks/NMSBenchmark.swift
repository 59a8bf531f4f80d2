import Detection
import Engine
import Explain
import Foundation
import NN
import Vision

/// `odam bench nms`: NMS, Soft-NMS and Odam-NMS on synthetic candidate sets, and the cost of the candidate maps
/// Odam-NMS needs against the forward pass of the same image.
public enum NMSBenchmark {
    public struct Row: Sendable, Codable {
        public var candidates: Int
        public var nmsMilliseconds: Double
        public var softNMSMilliseconds: Double
        public var odamNMSMilliseconds: Double
        public var kept: [Int]
    }

    public struct MapsRow: Sendable, Codable {
        public var height: Int
        public var width: Int
        public var candidates: Int
        public var mapsSeconds: Double
        public var forwardSeconds: Double
    }

    /// Candidates as a detector leaves them before NMS in a busy 800x1216 image: `count / 20` objects (sizes 16 to
    /// 400 px, 20 classes), 20 candidates each (boxes jittered by up to 15%, 10% with another class, scores uniform).
    /// Each map lives on the 50x76 grid over the 11x11-cell window of the FPN level the candidate's size maps to,
    /// a Gaussian on the object's centre with multiplicative noise.
    static func candidates(_ count: Int, seed: UInt64) -> (boxes: [Float], scores: [Float], labels: [Int], maps: CandidateMaps) {
        var random = RandomNumbers(seed: seed)
        let (height, width) = (800, 1216)
        var maps = CandidateMaps(gridHeight: height / 16, gridWidth: width / 16)
        var boxes: [Float] = [], scores: [Float] = [], labels: [Int] = []
        let objects = max(count / 20, 1)
        let centres = (0..<objects).map { _ in (random.unit() * Float(width), random.unit() * Float(height)) }
        let sizes = (0..<objects).map { _ in 16 * powf(25, random.unit()) }
        let classes = (0..<objects).map { _ in Int(random.next() % 20) }
        for i in 0..<count {
            let o = i % objects
            let (cx, cy) = centres[o]
            let size = sizes[o]
            let w = size * (0.85 + 0.3 * random.unit()), h = size * (0.85 + 0.3 * random.unit())
            let x = cx + size * 0.15 * (random.unit() - 0.5), y = cy + size * 0.15 * (random.unit() - 0.5)
            boxes += [x - w / 2, y - h / 2, x + w / 2, y + h / 2]
            scores.append(0.05 + 0.95 * random.unit())
            labels.append(random.unit() < 0.9 ? classes[o] : Int(random.next() % 20))
            let level = min(max(Int(log2f(size / 32)), 0), 4)
            let reach = max(Int((5.5 * Float(8 << level) / 16).rounded(.up)), 1)
            let (gx, gy) = (Int(x / 16), Int(y / 16))
            let rectangle = CandidateMaps.Rectangle(row: gy - reach, column: gx - reach, rows: 2 * reach + 1, columns: 2 * reach + 1)
            let sigma = max(size / 64, 0.7)
            var values: [Float] = []
            for dy in -reach...reach {
                for dx in -reach...reach {
                    let ox = Float(gx + dx) - cx / 16, oy = Float(gy + dy) - cy / 16
                    values.append(expf(-(ox * ox + oy * oy) / (2 * sigma * sigma)) * (0.5 + random.unit()))
                }
            }
            maps.append(values, over: rectangle)
        }
        return (boxes, scores, labels, maps)
    }

    public static func run(counts: [Int], runs: Int) -> [Row] {
        counts.map { count in
            let c = candidates(count, seed: UInt64(count))
            var kept = [0, 0, 0]
            let nms = Timing.measure(runs: runs) {
                kept[0] = BoxOps.batchedNMS(c.boxes, scores: c.scores, categories: c.labels, threshold: 0.5).count
            }
            let soft = Timing.measure(runs: runs) {
                kept[1] =
                    SoftNMS(decay: .gaussian(sigma: 0.5), scoreThreshold: 0.1)(boxes: c.boxes, scores: c.scores, labels: c.labels)
                    .indices.count
            }
            var odam = OdamNMS.fcos
            odam.maximumDetections = count
            let odamTiming = Timing.measure(runs: runs) {
                kept[2] = odam(boxes: c.boxes, scores: c.scores, labels: c.labels, maps: c.maps).count
            }
            return Row(
                candidates: count, nmsMilliseconds: nms.median * 1000, softNMSMilliseconds: soft.median * 1000,
                odamNMSMilliseconds: odamTiming.median * 1000, kept: kept)
        }
    }

    /// Seconds for the class-logit candidate maps of `count` candidates (placed as in ``ExplainBenchmark``) against
    /// the forward pass, FCOS with random weights on a random image.
    public static func maps(model: String, size: (Int, Int), count: Int, runs: Int) throws -> MapsRow {
        let (detector, trace, result, forward) = try ExplainBenchmark.timedForward(model: model, weights: nil, size: size, runs: runs)
        var chosen = result
        chosen.candidates = ExplainBenchmark.candidates(count, levels: trace.pyramid, classes: detector.classCount)
        let head = FCOSReversedHead(detector: detector)
        let maps = Timing.measure(warmups: 1, runs: runs) {
            blackHole(head.candidateMaps(trace: trace, result: chosen, predictions: Array(chosen.candidates.indices)))
        }
        return MapsRow(height: size.0, width: size.1, candidates: count, mapsSeconds: maps.median, forwardSeconds: forward.median)
    }

    public static func table(_ rows: [Row], maps: MapsRow?) -> String {
        var lines = [pad("candidates", 12) + pad("NMS ms", 10) + pad("Soft-NMS ms", 13) + pad("Odam-NMS ms", 13) + "kept (NMS, Soft, Odam)"]
        for row in rows {
            lines.append(
                pad("\(row.candidates)", 12) + pad(fixed(row.nmsMilliseconds, 2), 10) + pad(fixed(row.softNMSMilliseconds, 2), 13)
                    + pad(fixed(row.odamNMSMilliseconds, 2), 13) + row.kept.map(String.init).joined(separator: ", "))
        }
        if let maps {
            lines.append(
                "candidate maps (class logit, fast path, input/16 grid): \(maps.candidates) candidates at \(maps.height)x\(maps.width): "
                    + "\(fixed(maps.mapsSeconds, 3)) s; forward \(fixed(maps.forwardSeconds, 3)) s; ratio "
                    + fixed(maps.mapsSeconds / maps.forwardSeconds, 2))
        }
        return lines.joined(separator: "\n")
    }
}
