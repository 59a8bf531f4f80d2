import Detection
import Engine
import Foundation
import Vision

/// `odam eval explain`: the paper's map metrics (Table 1/3 layout) over a COCO-format annotation file.
///
/// Protocol of the official evaluation (`savefig_odam.py`, `eval_*.py`): detections after per-class NMS at 0.5, up to
/// 100, scoring above 0.1, are matched one to one, greedily, to same-class non-crowd ground truth with IoU above
/// `matchIoU` (0.9; "+1 pixel" IoU); a matched prediction's score map is used if it has a unique maximum.
public struct ExplanationEvaluation {
    /// A way to make maps: gradient-based (ODAM, Grad-CAM, Grad-CAM++ on the exact path) or D-RISE.
    public enum Method: Sendable {
        case gradient(HeatMapMethod)
        case drise(DRISE)
    }

    public struct Row: Sendable {
        public var method: String
        public var objects = 0
        public var pointingBox = 0.0, pointingMask = 0.0, energyBox = 0.0, energyMask = 0.0
        public var compactness = 0.0, odiBox = 0.0, odiMask = 0.0
        public var vea = [Double](repeating: 0, count: 9)
        /// Objects with deletion and insertion curves, the mean curves (11 points) and their AUCs.
        public var faithfulnessObjects = 0
        public var deletion = [Double](repeating: 0, count: 11), insertion = [Double](repeating: 0, count: 11)
        public var deletionAUC = 0.0, insertionAUC = 0.0
        /// The mean Spearman correlation between the maps of the model and of the model with a random head (the
        /// sanity check; lower is better), when run.
        public var randomizedCorrelation: Double?
        /// Seconds per explained object to make its map.
        public var secondsPerObject = 0.0
    }

    public var matchIoU: Float = 0.9
    public var scoreThreshold: Float = 0.1
    /// Deletion and insertion curves (21 forward passes per object and method).
    public var faithfulness = false
    /// The model with a random head, for the sanity check (``RandomizationCheck``); gradient methods only.
    public var randomized: (any Detector)?
    /// D-RISE runs on the first this many images only (it needs one forward pass per mask).
    public var driseImages = Int.max

    public init(matchIoU: Float = 0.9, scoreThreshold: Float = 0.1) {
        self.matchIoU = matchIoU
        self.scoreThreshold = scoreThreshold
    }

    static func iouPlusOne(_ a: Box<Float>, _ b: Box<Float>) -> Float {
        let w = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1), h = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
        let inter = w * h
        let areaA = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), areaB = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        return inter / (areaA + areaB - inter)
    }

    /// Greedy one-to-one matching: repeatedly the best-covered ground truth and its best prediction.
    func match(_ detections: [Detection], _ truth: [COCOAnnotations.Annotation]) -> [(Int, Int)] {
        var pairs: [(Int, Int)] = [], usedD = Set<Int>(), usedG = Set<Int>()
        while true {
            var best: (Int, Int, Float)? = nil
            for (g, gt) in truth.enumerated() where !usedG.contains(g) && !gt.isCrowd {
                for (d, det) in detections.enumerated() where !usedD.contains(d) && det.label == gt.categoryID {
                    let overlap = Self.iouPlusOne(det.box, gt.box)
                    if overlap > matchIoU && overlap > (best?.2 ?? 0) { best = (d, g, overlap) }
                }
            }
            guard let (d, g, _) = best else { return pairs }
            pairs.append((d, g))
            usedD.insert(d)
            usedG.insert(g)
        }
    }

    public func run(detector: any Detector, annotations: COCOAnnotations, imageDirectory: String, methods: [(String, Method)]) throws
        -> [Row]
    {
        var rows = methods.map { Row(method: $0.0) }
        let usesGradients = methods.contains { if case .gradient = $0.1 { true } else { false } }
        let codec = ImageCodec()
        for (imageNumber, image) in annotations.images.enumerated() {
            let decoded = try codec.decode(contentsOf: imageDirectory + "/" + image.fileName)
            let pixels = decoded.tensor()
            let (trace, results) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
                var timings = StageTimings()
                return detector.forward(detector.transform.batch([pixels]), timings: &timings)
            }
            let result = results[0]
            // The protocol's own NMS and score filter on the candidates.
            let candidates = result.candidates
            let kept = BoxOps.batchedNMS(
                candidates.flatMap(\.box), scores: candidates.map(\.score), categories: candidates.map(\.label), threshold: 0.5
            )
            .prefix(100).filter { candidates[$0].score > scoreThreshold }
            let detections = kept.map { index in
                Detection(
                    box: DetectionTransform.boxToOriginal(
                        candidates[index].box, resized: result.inputSize, original: result.originalSize),
                    score: candidates[index].score, label: candidates[index].label, candidate: index)
            }
            let truth = annotations.annotations(forImage: image.id)
            let pairs = match(detections, truth)
            guard !pairs.isEmpty else { continue }
            let height = decoded.height, width = decoded.width
            let boxMasks = truth.map { ExplanationMetrics.boxMask($0.box, height: height, width: width) }
            let masks = truth.map { gt in gt.segmentation.map { COCOAnnotations.mask($0, height: height, width: width) } }
            let predictions = pairs.map { detections[$0.0].candidate }
            // FCOS records its head once per image; every gradient method backpropagates through the same graph.
            let fcos = detector as? FCOS
            let recorded =
                !usesGradients
                ? nil
                : fcos.map {
                    FCOSExplainer(detector: $0).record(
                        trace: trace, levels: Set(predictions.map { candidates[$0].level }), targets: [.score])
                }
            var randomizedRun: (ForwardTrace, ImageDetections)? = nil
            if let randomized {
                let (randomTrace, randomResults) = withoutGradients { () -> (ForwardTrace, [ImageDetections]) in
                    var timings = StageTimings()
                    return randomized.forward(randomized.transform.batch([pixels]), timings: &timings)
                }
                // The same predictions (level, cell, anchor or RoI, class) in the randomized model's outputs.
                var same = randomResults[0]
                same.candidates = result.candidates
                randomizedRun = (randomTrace, same)
            }
            for (m, (_, method)) in methods.enumerated() {
                var maps: [Tensor]
                let watch = Stopwatch()
                switch method {
                case .gradient(let heatMapMethod):
                    let perTarget =
                        if let fcos, let recorded {
                            FCOSExplainer(detector: fcos, method: heatMapMethod).explain(
                                recorded, trace: trace, result: result, predictions: predictions, targets: [.score])
                        } else {
                            Explainers.exact(for: detector, method: heatMapMethod, feature: Explainers.defaultFeature(for: detector))!
                                .explain(
                                    trace: trace, result: result, image: 0, predictions: predictions, targets: [.score])
                        }
                    maps = perTarget.map { $0[.score]!.normalized }
                case .drise(let drise):
                    guard imageNumber < driseImages else { continue }
                    maps = drise.explain(detector: detector, image: pixels, trace: trace, result: result, predictions: predictions)
                        .map(\.normalized)
                }
                rows[m].secondsPerObject += watch.seconds
                var randomizedMaps: [Tensor]? = nil
                if case .gradient(let heatMapMethod) = method, let randomized, let (randomTrace, same) = randomizedRun {
                    randomizedMaps = Explainers.exact(
                        for: randomized, method: heatMapMethod, feature: Explainers.defaultFeature(for: randomized))!.explain(
                            trace: randomTrace, result: same, image: 0, predictions: predictions, targets: [.score]
                        ).map { $0[.score]!.normalized }
                }
                for (p, (_, g)) in pairs.enumerated() {
                    let map = maps[p]
                    // Only maps with a unique maximum, as the official protocol saves them.
                    guard map.scalars.filter({ $0 == 1 }).count == 1 else { continue }
                    let box = truth[g].box
                    let others = truth.indices.filter { $0 != g && !truth[$0].isCrowd }
                    rows[m].objects += 1
                    rows[m].pointingBox += ExplanationMetrics.pointingHit(map, box: box) ? 1 : 0
                    rows[m].energyBox += ExplanationMetrics.energy(map, region: boxMasks[g])
                    rows[m].compactness += ExplanationMetrics.compactness(map, box: box)
                    rows[m].odiBox += ExplanationMetrics.discrimination(map, target: boxMasks[g], others: others.map { boxMasks[$0] })
                    let mask = masks[g] ?? boxMasks[g]
                    rows[m].pointingMask += ExplanationMetrics.pointingHit(map, box: box, mask: mask) ? 1 : 0
                    rows[m].energyMask += ExplanationMetrics.energy(map, region: mask)
                    rows[m].odiMask += ExplanationMetrics.discrimination(
                        map, target: mask, others: others.map { masks[$0] ?? boxMasks[$0] })
                    let vea = ExplanationMetrics.visualExplanationAccuracy(map, mask: mask)
                    for t in 0..<9 { rows[m].vea[t] += vea[t] }
                    if let randomizedMaps {
                        rows[m].randomizedCorrelation =
                            (rows[m].randomizedCorrelation ?? 0) + RandomizationCheck.spearman(map, randomizedMaps[p])
                    }
                    if faithfulness {
                        let curves = FaithfulnessCurves(seed: UInt64(g)).curves(
                            detector: detector, image: pixels, map: map, box: box, label: truth[g].categoryID)
                        rows[m].faithfulnessObjects += 1
                        for k in 0..<11 {
                            rows[m].deletion[k] += curves.deletion[k]
                            rows[m].insertion[k] += curves.insertion[k]
                        }
                        rows[m].deletionAUC += curves.deletionAUC
                        rows[m].insertionAUC += curves.insertionAUC
                    }
                }
            }
        }
        return rows.map { row in
            var mean = row
            let n = Double(max(row.objects, 1)), f = Double(max(row.faithfulnessObjects, 1))
            mean.pointingBox /= n; mean.pointingMask /= n; mean.energyBox /= n; mean.energyMask /= n
            mean.compactness /= n; mean.odiBox /= n; mean.odiMask /= n
            mean.vea = row.vea.map { $0 / n }
            mean.randomizedCorrelation = row.randomizedCorrelation.map { $0 / n }
            mean.secondsPerObject /= n
            mean.deletion = row.deletion.map { $0 / f }
            mean.insertion = row.insertion.map { $0 / f }
            mean.deletionAUC /= f
            mean.insertionAUC /= f
            return mean
        }
    }

    /// The table in the paper's layout (percentages; compactness as a ratio).
    public static func table(_ rows: [Row]) -> String {
        func pct(_ v: Double) -> String { String(format: "%.1f", v * 100) }
        let nameWidth = max(12, (rows.map(\.method.count).max() ?? 0) + 2)
        var lines = [
            "method".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + "objects  PG box  PG mask  EPG box  EPG mask  compact  ODI box  ODI mask  del AUC  ins AUC  random ρ  s/object  VEA@0.1..0.9"
        ]
        for r in rows {
            let fields = [
                r.method.padding(toLength: nameWidth, withPad: " ", startingAt: 0),
                String(r.objects).padding(toLength: 9, withPad: " ", startingAt: 0),
                pct(r.pointingBox).padding(toLength: 8, withPad: " ", startingAt: 0),
                pct(r.pointingMask).padding(toLength: 9, withPad: " ", startingAt: 0),
                pct(r.energyBox).padding(toLength: 9, withPad: " ", startingAt: 0),
                pct(r.energyMask).padding(toLength: 10, withPad: " ", startingAt: 0),
                String(format: "%.2f", r.compactness).padding(toLength: 9, withPad: " ", startingAt: 0),
                pct(r.odiBox).padding(toLength: 9, withPad: " ", startingAt: 0),
                pct(r.odiMask).padding(toLength: 10, withPad: " ", startingAt: 0),
                (r.faithfulnessObjects > 0 ? String(format: "%.3f", r.deletionAUC) : "-").padding(toLength: 9, withPad: " ", startingAt: 0),
                (r.faithfulnessObjects > 0 ? String(format: "%.3f", r.insertionAUC) : "-").padding(
                    toLength: 9, withPad: " ", startingAt: 0),
                (r.randomizedCorrelation.map { String(format: "%.3f", $0) } ?? "-").padding(toLength: 10, withPad: " ", startingAt: 0),
                String(format: "%.3f", r.secondsPerObject).padding(toLength: 10, withPad: " ", startingAt: 0),
                r.vea.map(pct).joined(separator: " "),
            ]
            lines.append(fields.joined())
        }
        return lines.joined(separator: "\n")
    }
}
