import Foundation

/// One entry of a COCO results file.
public struct COCOResult: Sendable, Equatable {
    public var imageID: Int
    public var categoryID: Int
    /// (x, y, width, height).
    public var bbox: [Double]
    public var score: Double

    public init(imageID: Int, categoryID: Int, bbox: [Double], score: Double) {
        self.imageID = imageID
        self.categoryID = categoryID
        self.bbox = bbox
        self.score = score
    }

    /// A detection (x1, y1, x2, y2 in original pixels) as a result of image `imageID`; its label is the category.
    public init(imageID: Int, detection d: Detection) {
        self.init(
            imageID: imageID, categoryID: d.label,
            bbox: [Double(d.box[0]), Double(d.box[1]), Double(d.box[2] - d.box[0]), Double(d.box[3] - d.box[1])], score: Double(d.score))
    }

    /// Reads a COCO results file: a JSON array of `{image_id, category_id, bbox, score}`.
    public static func load(contentsOf path: String) throws -> [COCOResult] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read the results file") }
        guard let entries = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw ModelError("\(path): not a JSON array of detections (COCO results have image_id, category_id, bbox, score)")
        }
        func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }
        return try entries.enumerated().map { index, entry in
            guard let image = number(entry["image_id"]), let category = number(entry["category_id"]),
                let score = number(entry["score"]), let bbox = (entry["bbox"] as? [Any])?.compactMap({ number($0) }), bbox.count == 4
            else { throw ModelError("\(path): entry \(index) lacks image_id, category_id, score or a 4-number bbox") }
            return COCOResult(imageID: Int(image), categoryID: Int(category), bbox: bbox, score: score)
        }
    }
}

/// COCO box evaluation as pycocotools' `COCOeval(gt, dt, "bbox")`: per image and category, detections greedily
/// matched by score to the best unmatched ground truth at each IoU threshold, crowds and out-of-range areas ignored;
/// precision interpolated at 101 recall points; the twelve summary numbers of `summarize()`.
public struct COCOEvaluation: Sendable {
    /// The twelve numbers of `COCOeval.summarize()`, in its order (-1 where nothing could be measured).
    public struct Summary: Sendable, Equatable {
        public var stats: [Double]
        public var ap: Double { stats[0] }
        public var ap50: Double { stats[1] }
        public var ap75: Double { stats[2] }
        public var ar100: Double { stats[8] }

        /// The names of `stats` in JSON reports, in pycocotools' order.
        public static let keys = [
            "ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large",
        ]

        static let labels = [
            "AP @[.50:.95 | all | 100]", "AP @[.50 | all | 100]", "AP @[.75 | all | 100]", "AP @[.50:.95 | small | 100]",
            "AP @[.50:.95 | medium | 100]", "AP @[.50:.95 | large | 100]", "AR @[.50:.95 | all | 1]", "AR @[.50:.95 | all | 10]",
            "AR @[.50:.95 | all | 100]", "AR @[.50:.95 | small | 100]", "AR @[.50:.95 | medium | 100]",
            "AR @[.50:.95 | large | 100]",
        ]

        /// The summary in pycocotools' layout, one line per number.
        public var table: String {
            zip(Self.labels, stats).map { label, value in
                label.padding(toLength: 30, withPad: " ", startingAt: 0) + " = " + String(format: "%.3f", value)
            }.joined(separator: "\n")
        }
    }

    /// np.linspace(0.5, 0.95, 10) and np.linspace(0, 1, 101), computed as numpy does.
    public var iouThresholds = Self.linspace(0.5, 0.95, 10)
    public var recallThresholds = Self.linspace(0, 1, 101)
    public var maximumDetections = [1, 10, 100]
    /// all, small, medium, large.
    public var areaRanges: [(Double, Double)] = [(0, 1e10), (0, 32 * 32), (32 * 32, 96 * 96), (96 * 96, 1e10)]

    public init() {}

    static func linspace(_ start: Double, _ stop: Double, _ count: Int) -> [Double] {
        let step = (stop - start) / Double(count - 1)
        var values = (0..<count).map { start + Double($0) * step }
        values[count - 1] = stop
        return values
    }

    /// One image and category at one area range: per threshold, whether each detection matched and whether it is
    /// ignored; which ground truths are ignored; detection scores (best first, at most the largest maxDets).
    struct ImageEvaluation {
        var matched: [[Bool]]
        var ignoredDetections: [[Bool]]
        var ignoredGroundTruths: [Bool]
        var scores: [Double]
    }

    /// Box IoU as pycocotools' `bbIou` (x, y, w, h boxes; a crowd's overlap is measured over the detection's area).
    static func iou(_ d: [Double], _ g: [Double], crowd: Bool) -> Double {
        let w = min(d[0] + d[2], g[0] + g[2]) - max(d[0], g[0])
        guard w > 0 else { return 0 }
        let h = min(d[1] + d[3], g[1] + g[3]) - max(d[1], g[1])
        guard h > 0 else { return 0 }
        let intersection = w * h
        let union = crowd ? d[2] * d[3] : d[2] * d[3] + g[2] * g[3] - intersection
        return intersection / union
    }

    /// Evaluates `results` against `groundTruth`.
    public func evaluate(groundTruth: COCOAnnotations, results: [COCOResult]) throws -> Summary {
        let imageIDs = groundTruth.images.map(\.id).sorted()
        let known = Set(imageIDs)
        if let stray = results.first(where: { !known.contains($0.imageID) }) {
            throw ModelError("results name image \(stray.imageID), which the annotation file does not list")
        }
        let categoryIDs = groundTruth.categories.keys.sorted()
        var truths: [Int: [Int: [COCOAnnotations.Annotation]]] = [:]
        for annotation in groundTruth.annotations {
            truths[annotation.imageID, default: [:]][annotation.categoryID, default: []].append(annotation)
        }
        var detections: [Int: [Int: [COCOResult]]] = [:]
        for result in results { detections[result.imageID, default: [:]][result.categoryID, default: []].append(result) }

        // evaluations[category][area][image], nil where the image has neither ground truth nor detections.
        var evaluations = [[[ImageEvaluation?]]](
            repeating: [[ImageEvaluation?]](repeating: [], count: areaRanges.count), count: categoryIDs.count)
        for (k, category) in categoryIDs.enumerated() {
            for image in imageIDs {
                let gts = truths[image]?[category] ?? [], dts = detections[image]?[category] ?? []
                for a in areaRanges.indices {
                    evaluations[k][a].append(evaluateImage(gts: gts, dts: dts, areaRange: areaRanges[a]))
                }
            }
        }
        let (precision, recall) = accumulate(evaluations)
        func summarize(precision isPrecision: Bool, iou: Int? = nil, area: Int = 0, maxDetections: Int = 2) -> Double {
            var values: [Double] = []
            for t in iouThresholds.indices where iou == nil || iou == t {
                for k in categoryIDs.indices {
                    if isPrecision {
                        values += precision[t][k][area][maxDetections].filter { $0 > -1 }
                    } else if recall[t][k][area][maxDetections] > -1 {
                        values.append(recall[t][k][area][maxDetections])
                    }
                }
            }
            return values.isEmpty ? -1 : values.reduce(0, +) / Double(values.count)
        }
        return Summary(stats: [
            summarize(precision: true), summarize(precision: true, iou: 0), summarize(precision: true, iou: 5),
            summarize(precision: true, area: 1), summarize(precision: true, area: 2), summarize(precision: true, area: 3),
            summarize(precision: false, maxDetections: 0), summarize(precision: false, maxDetections: 1),
            summarize(precision: false), summarize(precision: false, area: 1), summarize(precision: false, area: 2),
            summarize(precision: false, area: 3),
        ])
    }

    /// `COCOeval.evaluateImg` for one image, category and area range.
    func evaluateImage(gts allGTs: [COCOAnnotations.Annotation], dts allDTs: [COCOResult], areaRange: (Double, Double))
        -> ImageEvaluation?
    {
        if allGTs.isEmpty && allDTs.isEmpty { return nil }
        let ignoredGT = allGTs.map { $0.isCrowd || $0.area < areaRange.0 || $0.area > areaRange.1 }
        // Ground truth not ignored first, detections best first; both orders stable, as numpy's mergesort.
        let gtOrder = allGTs.indices.sorted { (ignoredGT[$0] ? 1 : 0, $0) < (ignoredGT[$1] ? 1 : 0, $1) }
        let gts = gtOrder.map { allGTs[$0] }, gtIgnored = gtOrder.map { ignoredGT[$0] }
        let dts = allDTs.indices.sorted { (-allDTs[$0].score, $0) < (-allDTs[$1].score, $1) }.prefix(maximumDetections.last!).map {
            allDTs[$0]
        }
        let ious = dts.map { d in gts.map { g in Self.iou(d.bbox, g.fileBBox, crowd: g.isCrowd) } }
        var matched = [[Bool]](repeating: [Bool](repeating: false, count: dts.count), count: iouThresholds.count)
        var ignoredDT = matched
        for (t, threshold) in iouThresholds.enumerated() {
            var gtMatched = [Bool](repeating: false, count: gts.count)
            for d in dts.indices {
                var best = min(threshold, 1 - 1e-10)
                var match = -1
                for g in gts.indices {
                    if gtMatched[g] && !gts[g].isCrowd { continue }
                    // Past the ground truth that counts, a match already found stays.
                    if match > -1 && !gtIgnored[match] && gtIgnored[g] { break }
                    if ious[d][g] < best { continue }
                    best = ious[d][g]
                    match = g
                }
                guard match > -1 else { continue }
                ignoredDT[t][d] = gtIgnored[match]
                matched[t][d] = true
                gtMatched[match] = true
            }
            for d in dts.indices where !matched[t][d] {
                let area = dts[d].bbox[2] * dts[d].bbox[3]
                if area < areaRange.0 || area > areaRange.1 { ignoredDT[t][d] = true }
            }
        }
        return ImageEvaluation(matched: matched, ignoredDetections: ignoredDT, ignoredGroundTruths: gtIgnored, scores: dts.map(\.score))
    }

    /// `COCOeval.accumulate`: precision [T][K][A][M][R] and recall [T][K][A][M], -1 where a category has no ground
    /// truth that counts.
    func accumulate(_ evaluations: [[[ImageEvaluation?]]]) -> (precision: [[[[[Double]]]]], recall: [[[[Double]]]]) {
        let (T, K, A, M, R) = (iouThresholds.count, evaluations.count, areaRanges.count, maximumDetections.count, recallThresholds.count)
        var precision = [[[[[Double]]]]](
            repeating: [[[[Double]]]](
                repeating: [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: -1, count: R), count: M), count: A),
                count: K), count: T)
        var recall = [[[[Double]]]](
            repeating: [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: -1, count: M), count: A), count: K), count: T)
        for k in 0..<K {
            for a in 0..<A {
                let images = evaluations[k][a].compactMap { $0 }
                guard !images.isEmpty else { continue }
                let counted = images.reduce(0) { $0 + $1.ignoredGroundTruths.filter { !$0 }.count }
                guard counted > 0 else { continue }
                for (m, maxDetections) in maximumDetections.enumerated() {
                    // (score, image, detection), best first; stable as numpy's mergesort over the concatenation.
                    var entries: [(score: Double, image: Int, detection: Int)] = []
                    for (i, image) in images.enumerated() {
                        for d in 0..<min(maxDetections, image.scores.count) { entries.append((image.scores[d], i, d)) }
                    }
                    entries = entries.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }.map(\.element)
                    for t in 0..<T {
                        var tp = 0.0, fp = 0.0
                        var recalls: [Double] = [], precisions: [Double] = []
                        for entry in entries {
                            let image = images[entry.image]
                            if image.ignoredDetections[t][entry.detection] { continue }
                            if image.matched[t][entry.detection] { tp += 1 } else { fp += 1 }
                            recalls.append(tp / Double(counted))
                            precisions.append(tp / (fp + tp + Double.ulpOfOne))
                        }
                        // numpy keeps the ignored entries as repeated points; they do not change the curve's values
                        // at the recall thresholds, which only the first point at or above each threshold sets.
                        recall[t][k][a][m] = recalls.last ?? 0
                        for i in stride(from: precisions.count - 1, to: 0, by: -1) where precisions[i] > precisions[i - 1] {
                            precisions[i - 1] = precisions[i]
                        }
                        var q = [Double](repeating: 0, count: R)
                        var position = 0
                        for (r, threshold) in recallThresholds.enumerated() {
                            while position < recalls.count && recalls[position] < threshold { position += 1 }
                            guard position < recalls.count else { break }
                            q[r] = precisions[position]
                        }
                        precision[t][k][a][m] = q
                    }
                }
            }
        }
        return (precision, recall)
    }
}
