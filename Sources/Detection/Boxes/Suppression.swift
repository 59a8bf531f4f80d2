#if canImport(Glibc)
    import Glibc
#endif

/// Odam-NMS (paper Algorithm 1): greedy by score within each class; a candidate is a duplicate of a kept box when
/// they overlap and their explanations are not clearly different, or when their explanations are nearly the same
/// even without much overlap.
public struct OdamNMS: Sendable, Equatable, Codable {
    public var iouThreshold: Float
    /// T_l: the correlation above which an overlapping candidate (IoU ≥ T_iou) is a duplicate.
    public var lowCorrelation: Float
    /// T_h: the correlation above which a candidate with little overlap (IoU < T_iou) is still a duplicate.
    public var highCorrelation: Float
    public var maximumDetections: Int

    /// The paper's FCOS settings (T_iou 0.5, T_l 0.2, T_h 0.8).
    public static let fcos = OdamNMS(iouThreshold: 0.5, lowCorrelation: 0.2, highCorrelation: 0.8, maximumDetections: 500)
    /// The official code's Faster R-CNN settings (T_iou 0.6, T_l 0.3, T_h 0.7).
    public static let fasterRCNN = OdamNMS(iouThreshold: 0.6, lowCorrelation: 0.3, highCorrelation: 0.7, maximumDetections: 300)

    /// The settings for a detector: ``fasterRCNN`` for Faster R-CNN, ``fcos`` for the one-stage detectors.
    public static func defaults(for detector: any Detector) -> OdamNMS { detector is FasterRCNN ? .fasterRCNN : .fcos }

    public init(iouThreshold: Float, lowCorrelation: Float, highCorrelation: Float, maximumDetections: Int) {
        self.iouThreshold = iouThreshold
        self.lowCorrelation = lowCorrelation
        self.highCorrelation = highCorrelation
        self.maximumDetections = maximumDetections
    }

    /// Indices kept, best score first.
    ///
    /// - Parameters:
    ///   - boxes: (x1, y1, x2, y2) per candidate.
    ///   - maps: one flattened heat map per candidate, `dimension` values each; they are L2-normalized here, so the
    ///     correlation of two candidates is the cosine of their maps (no mean subtraction, as the official code).
    public func callAsFunction(boxes: [Float], scores: [Float], labels: [Int], maps: [Float], dimension: Int) -> [Int] {
        precondition(maps.count == dimension * scores.count, "Odam-NMS input sizes differ")
        return self(boxes: boxes, scores: scores, labels: labels, maps: CandidateMaps(dense: maps, gridHeight: 1, gridWidth: dimension))
    }

    /// Indices kept, best score first, for candidates whose maps are given on a shared grid.
    public func callAsFunction(boxes: [Float], scores: [Float], labels: [Int], maps: CandidateMaps) -> [Int] {
        precondition(maps.count == scores.count, "Odam-NMS input sizes differ")
        return self(boxes: boxes, scores: scores, labels: labels) { maps.correlation($0, $1) }
    }

    /// Indices kept, best score first, with the correlation of two candidates' maps from `correlation` (for sweeps
    /// over thresholds that compute each pair's correlation once).
    public func callAsFunction(boxes: [Float], scores: [Float], labels: [Int], correlation: (Int, Int) -> Float) -> [Int] {
        let count = scores.count
        precondition(boxes.count == 4 * count && labels.count == count, "Odam-NMS input sizes differ")
        let areas = BoxOps.areas(boxes)
        let order = (0..<count).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        // Candidates of each class in score order: the greedy pass of one class never looks at another's.
        var byClass: [Int: [Int]] = [:]
        var rankInClass = [Int](repeating: 0, count: count)
        for i in order {
            rankInClass[i] = byClass[labels[i], default: []].count
            byClass[labels[i], default: []].append(i)
        }
        var suppressed = [Bool](repeating: false, count: count)
        var keep: [Int] = []
        boxes.withUnsafeBufferPointer { b in
            areas.withUnsafeBufferPointer { a in
                for i in order where !suppressed[i] {
                    keep.append(i)
                    let members = byClass[labels[i]]!
                    for j in members[(rankInClass[i] + 1)...] where !suppressed[j] {
                        let overlap = BoxOps.iou(b.baseAddress!, i, j, areas: a.baseAddress!)
                        let similarity = correlation(i, j)
                        let duplicate = overlap >= iouThreshold ? similarity > lowCorrelation : similarity > highCorrelation
                        if duplicate { suppressed[j] = true }
                    }
                }
            }
        }
        return Array(keep.prefix(maximumDetections))
    }
}

/// Soft-NMS (Bodla et al. 2017) within each class: instead of removing overlapping candidates, decay their scores.
public struct SoftNMS: Sendable, Equatable, Codable {
    public enum Decay: Sendable, Equatable, Codable {
        /// s ← s·(1 − IoU) when IoU > the threshold.
        case linear(iouThreshold: Float)
        /// s ← s·exp(−IoU²/σ).
        case gaussian(sigma: Float)
    }

    public var decay: Decay
    /// Candidates whose decayed score falls to or below this are dropped.
    public var scoreThreshold: Float

    public init(decay: Decay = .gaussian(sigma: 0.5), scoreThreshold: Float = 0.05) {
        self.decay = decay
        self.scoreThreshold = scoreThreshold
    }

    /// Kept indices and their decayed scores, in the order they were selected (highest current score first).
    public func callAsFunction(boxes: [Float], scores: [Float], labels: [Int]) -> (indices: [Int], scores: [Float]) {
        var current = scores
        var remaining = Array(scores.indices)
        let areas = BoxOps.areas(boxes)
        var kept: [Int] = [], keptScores: [Float] = []
        // The O(n²) loop runs on buffer pointers: this module keeps Swift's bounds checks, which doubled its time.
        // Every index below comes from `remaining`, a permutation of the candidates' own indices.
        boxes.withUnsafeBufferPointer { b in
            areas.withUnsafeBufferPointer { a in
                labels.withUnsafeBufferPointer { label in
                    current.withUnsafeMutableBufferPointer { score in
                        remaining.withUnsafeMutableBufferPointer { left in
                            var count = left.count
                            while count > 0 {
                                // The best current score; lower index first at ties (so the order of `left` is free).
                                var best = 0
                                for position in 1..<count {
                                    let candidate = left[position], leader = left[best]
                                    if score[candidate] > score[leader] || (score[candidate] == score[leader] && candidate < leader) {
                                        best = position
                                    }
                                }
                                let i = left[best]
                                count -= 1
                                left[best] = left[count]
                                guard score[i] > scoreThreshold else { continue }
                                kept.append(i)
                                keptScores.append(score[i])
                                for position in 0..<count {
                                    let j = left[position]
                                    guard label[j] == label[i] else { continue }
                                    let overlap = BoxOps.iou(b.baseAddress!, i, j, areas: a.baseAddress!)
                                    switch decay {
                                    case .linear(let threshold): if overlap > threshold { score[j] *= 1 - overlap }
                                    case .gaussian(let sigma): score[j] *= expf(-overlap * overlap / sigma)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (kept, keptScores)
    }
}
