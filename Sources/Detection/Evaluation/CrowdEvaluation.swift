#if canImport(Glibc)
    import Glibc
#endif

extension Box where Scalar == Double {
    /// Intersection over union, or over this box's area (`overSelf`), with no +1 on widths.
    func overlap(_ other: Box, overSelf: Bool = false) -> Double {
        let w = Swift.max(0, Swift.min(x2, other.x2) - Swift.max(x1, other.x1)),
            h = Swift.max(0, Swift.min(y2, other.y2) - Swift.max(y1, other.y1))
        let intersection = w * h
        let denominator = overSelf ? area : area + other.area - intersection
        return intersection / Swift.max(denominator, Double.ulpOfOne)
    }

    /// Clipped as the CrowdDet toolkit clips (x1 to [0, width - 1], x2 to [0, width]).
    func clipped(width: Double, height: Double) -> Box {
        Box(
            Swift.min(Swift.max(x1, 0), width - 1), Swift.min(Swift.max(y1, 0), height - 1), Swift.max(Swift.min(x2, width), 0),
            Swift.max(Swift.min(y2, height), 0))
    }
}

/// One image for the crowd metrics: ground-truth boxes (some of them ignore regions) and scored detections.
public struct CrowdImage: Sendable {
    public var width: Int
    public var height: Int
    public var groundTruth: [Box<Double>]
    /// Per ground-truth box: an ignore region (CrowdHuman's `mask` tag or `extra.ignore`), not an object to find.
    public var ignored: [Bool]
    public var detections: [Box<Double>]
    public var scores: [Double]

    public init(width: Int, height: Int, groundTruth: [Box<Double>], ignored: [Bool], detections: [Box<Double>], scores: [Double]) {
        precondition(groundTruth.count == ignored.count && detections.count == scores.count, "crowd image sizes differ")
        self.width = width
        self.height = height
        self.groundTruth = groundTruth
        self.ignored = ignored
        self.detections = detections
        self.scores = scores
    }
}

/// The crowd-detection metrics of CrowdHuman as the CrowdDet evaluation toolkit defines them (Chu et al. 2020),
/// with recall on the crowd and sparse subsets of the ground truth.
public struct CrowdMetrics: Sendable, Equatable {
    /// Average precision at IoU 0.5: the trapezoid area under the precision-recall points.
    public var ap50: Double
    /// Log-average miss rate over nine FPPI points from 10⁻² to 10⁰ (MR⁻²); lower is better.
    public var missRate: Double
    /// Jaccard index: the mean per-image k / (m + n − k) of a maximum matching at IoU ≥ 0.5, best over score
    /// thresholds 0.0, 0.1, …, 0.9.
    public var jaccardIndex: Double
    /// Recall at IoU 0.5 of the people that overlap another person at IoU > 0.5, and of the others, by all the
    /// detections.
    public var crowdRecall: Double
    public var sparseRecall: Double
    public var crowdCount: Int
    public var sparseCount: Int
    /// The score threshold (0.0, 0.1, …, 0.9) at which the Jaccard index is best, and the crowd and sparse recall of
    /// the detections scoring above it (the paper's Table 7 reports recall there).
    public var jaccardScoreThreshold: Double = 0
    public var crowdRecallAtBestJaccard: Double = 0
    public var sparseRecallAtBestJaccard: Double = 0
}

/// One image's share of the crowd metrics, computed once (``CrowdEvaluation/score(_:iouThreshold:)``): the metrics of
/// any set of images, a bootstrap resample included, add these up (``CrowdEvaluation/metrics(_:)``).
public struct CrowdImageScore: Sendable {
    /// Each counted detection's score and whether it matched a person (Caltech matching).
    var outcomes: [(score: Double, truePositive: Bool)]
    var people: Int
    /// Per score threshold 0.0, 0.1, …, 0.9: the image's k / (m + n − k), and whether it has anything to count.
    var jaccard: [Double]
    var counted: [Bool]
    /// The score of the detection matched to each crowd and each sparse person (−infinity where none matched).
    var crowdMatchScores: [Double]
    var sparseMatchScores: [Double]
}

public enum CrowdEvaluation {
    /// The score thresholds the Jaccard index is taken at (0.0, 0.1, …, 0.9).
    static let jaccardScoreThresholds = (0..<10).map { 0.1 * Double($0) }

    /// Evaluates images; boxes are clipped to each image first, as the toolkit does.
    public static func evaluate(_ images: [CrowdImage], iouThreshold: Double = 0.5) -> CrowdMetrics {
        metrics(images.map { score($0, iouThreshold: iouThreshold) })
    }

    /// One image's share of the metrics (boxes clipped to the image first, as the toolkit does).
    public static func score(_ image: CrowdImage, iouThreshold: Double = 0.5) -> CrowdImageScore {
        var clipped = image
        let (w, h) = (Double(image.width), Double(image.height))
        clipped.groundTruth = image.groundTruth.map { $0.clipped(width: w, height: h) }
        clipped.detections = image.detections.map { $0.clipped(width: w, height: h) }
        let (scored, matchScores) = caltechMatching(clipped, threshold: iouThreshold)
        let (crowd, sparse) = crowdSubsets(clipped)
        let terms = jaccardScoreThresholds.map { jaccardTerm(clipped, scoreThreshold: $0, threshold: iouThreshold) }
        return CrowdImageScore(
            outcomes: scored, people: clipped.ignored.filter { !$0 }.count, jaccard: terms.map(\.value), counted: terms.map(\.counted),
            crowdMatchScores: crowd.map { matchScores[$0] }, sparseMatchScores: sparse.map { matchScores[$0] })
    }

    /// The metrics of a set of images from their shares (an image may appear more than once, as in a bootstrap
    /// resample).
    public static func metrics(_ images: [CrowdImageScore]) -> CrowdMetrics {
        var outcomes = images.flatMap { $0.outcomes }
        outcomes = outcomes.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }.map(\.element)
        let (ap, missRate) = precisionAndMissRate(outcomes, people: images.reduce(0) { $0 + $1.people }, images: images.count)
        // The best Jaccard index over the score thresholds (the first of equals).
        var best = 0.0, bestThreshold = 0.0
        for (t, threshold) in jaccardScoreThresholds.enumerated() {
            let counted = images.filter { $0.counted[t] }.count
            guard counted > 0 else { continue }
            let value = images.reduce(0.0) { $0 + $1.jaccard[t] } / Double(counted)
            if value > best { (best, bestThreshold) = (value, threshold) }
        }
        let crowd = images.flatMap(\.crowdMatchScores), sparse = images.flatMap(\.sparseMatchScores)
        func recall(_ scores: [Double], above threshold: Double) -> Double {
            scores.isEmpty ? 0 : Double(scores.filter { $0 > threshold }.count) / Double(scores.count)
        }
        return CrowdMetrics(
            ap50: ap, missRate: missRate, jaccardIndex: best, crowdRecall: recall(crowd, above: -.infinity),
            sparseRecall: recall(sparse, above: -.infinity), crowdCount: crowd.count, sparseCount: sparse.count,
            jaccardScoreThreshold: bestThreshold, crowdRecallAtBestJaccard: recall(crowd, above: bestThreshold),
            sparseRecallAtBestJaccard: recall(sparse, above: bestThreshold))
    }

    /// Caltech matching: detections best first, each to the unmatched person of highest IoU above the threshold;
    /// one that matches no person but covers an ignore region (over its own area) is left out. Returns the scored
    /// outcomes and which ground-truth boxes were matched.
    static func caltechMatching(_ image: CrowdImage, threshold: Double) -> (
        scored: [(score: Double, truePositive: Bool)], matchScores: [Double]
    ) {
        let detections = image.detections.indices.sorted { (-image.scores[$0], $0) < (-image.scores[$1], $1) }
        // People first, ignore regions after, each in file order.
        let truths = image.groundTruth.indices.sorted { (image.ignored[$0] ? 1 : 0, $0) < (image.ignored[$1] ? 1 : 0, $1) }
        var matched = [Bool](repeating: false, count: image.groundTruth.count)
        var matchScores = [Double](repeating: -.infinity, count: image.groundTruth.count)
        var scored: [(score: Double, truePositive: Bool)] = []
        for d in detections {
            let box = image.detections[d]
            var best = threshold
            var match = -1
            for g in truths where !matched[g] {
                let truth = image.groundTruth[g]
                if !image.ignored[g] {
                    let overlap = box.overlap(truth)
                    if overlap > best { (best, match) = (overlap, g) }
                } else {
                    if match >= 0 { break }
                    if box.overlap(truth, overSelf: true) > threshold { match = g }
                }
            }
            if match >= 0 {
                if !image.ignored[match] {
                    matched[match] = true
                    matchScores[match] = image.scores[d]
                    scored.append((image.scores[d], true))
                }
            } else {
                scored.append((image.scores[d], false))
            }
        }
        return (scored, matchScores)
    }

    /// AP (trapezoids between consecutive precision-recall points) and MR⁻² from outcomes sorted best first.
    static func precisionAndMissRate(_ outcomes: [(score: Double, truePositive: Bool)], people: Int, images: Int) -> (Double, Double) {
        var tp = 0.0, fp = 0.0
        var recalls: [Double] = [], precisions: [Double] = [], fppi: [Double] = []
        for outcome in outcomes {
            if outcome.truePositive { tp += 1 } else { fp += 1 }
            recalls.append(tp / Double(people))
            precisions.append(tp / (tp + fp))
            fppi.append(fp / Double(images))
        }
        var ap = 0.0
        for k in recalls.indices.dropFirst() { ap += (recalls[k] - recalls[k - 1]) * (precisions[k - 1] + precisions[k]) / 2 }
        let references = [0.0100, 0.0178, 0.03160, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623, 1.000]
        guard !fppi.isEmpty else { return (ap, 1) }
        var logSum = 0.0
        for reference in references {
            let index = fppi.firstIndex { $0 >= reference } ?? fppi.count - 1
            logSum += log(1 - recalls[index])
        }
        return (ap, exp(logSum / Double(references.count)))
    }

    /// One image's k / (m + n − k) for the detections scoring above `scoreThreshold`, and whether it counts (it has a
    /// detection or a person left after ignore regions).
    static func jaccardTerm(_ image: CrowdImage, scoreThreshold: Double, threshold: Double) -> (value: Double, counted: Bool) {
        let detections = image.detections.indices.filter { image.scores[$0] > scoreThreshold }.map { image.detections[$0] }
        let people = image.groundTruth.indices.filter { !image.ignored[$0] }.map { image.groundTruth[$0] }
        let ignores = image.groundTruth.indices.filter { image.ignored[$0] }.map { image.groundTruth[$0] }
        let edges = detections.map { d in people.indices.filter { d.overlap(people[$0]) >= threshold } }
        let match = maximumMatching(edges, right: people.count)
        func ignoredCount(_ boxes: [Box<Double>]) -> Int {
            boxes.filter { box in ignores.contains { box.overlap($0, overSelf: true) > threshold } }.count
        }
        let k = match.filter { $0 >= 0 }.count
        let matchedPeople = Set(match.filter { $0 >= 0 })
        let n = detections.count - ignoredCount(detections.indices.filter { match[$0] < 0 }.map { detections[$0] })
        let m = people.count - ignoredCount(people.indices.filter { !matchedPeople.contains($0) }.map { people[$0] })
        return (Double(k) / (Double(m + n - k) + 1e-6), n != 0 || m != 0)
    }

    /// A maximum-cardinality bipartite matching by augmenting paths: for each left vertex, its right partner or -1.
    static func maximumMatching(_ edges: [[Int]], right: Int) -> [Int] {
        var partnerOfRight = [Int](repeating: -1, count: right)
        var partnerOfLeft = [Int](repeating: -1, count: edges.count)
        for start in edges.indices {
            // Breadth-first search for an augmenting path from `start` (iterative: crowds can be large).
            var parentOfRight = [Int](repeating: -1, count: right)
            var queue = [start]
            var head = 0
            var end = -1
            search: while head < queue.count {
                let left = queue[head]
                head += 1
                for r in edges[left] where parentOfRight[r] == -1 {
                    parentOfRight[r] = left
                    if partnerOfRight[r] == -1 {
                        end = r
                        break search
                    }
                    queue.append(partnerOfRight[r])
                }
            }
            var r = end
            while r != -1 {
                let left = parentOfRight[r]
                let previous = partnerOfLeft[left]
                partnerOfLeft[left] = r
                partnerOfRight[r] = left
                r = previous
            }
        }
        return partnerOfLeft
    }

    /// Indices of the people that overlap another person at IoU > 0.5 (crowd) and of the other people (sparse).
    static func crowdSubsets(_ image: CrowdImage) -> (crowd: [Int], sparse: [Int]) {
        let people = image.groundTruth.indices.filter { !image.ignored[$0] }
        var crowd: [Int] = [], sparse: [Int] = []
        for i in people {
            let overlapped = people.contains { $0 != i && image.groundTruth[i].overlap(image.groundTruth[$0]) > 0.5 }
            if overlapped { crowd.append(i) } else { sparse.append(i) }
        }
        return (crowd, sparse)
    }
}
