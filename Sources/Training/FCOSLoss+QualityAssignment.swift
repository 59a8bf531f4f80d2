import Detection
public import Engine

#if canImport(Glibc)
    import Glibc
#endif

extension FCOSLoss {
    /// How locations are given objects.
    public enum Assignment: String, Sendable, Codable {
        /// torchvision's: center sampling, FPN level ranges, the smallest box wins.
        case torchvision
        /// The official ODAM code's (`fcos_target_in_r` with `quality_assign`, then `assign_with_quality`): on every
        /// level, locations inside the object and within 1.5 strides of its center snapped to the level's grid are
        /// candidates; quality is σ(class logit)^0.2 · IoU(predicted box, object)^0.8 on the detached predictions; each
        /// location goes to the object of highest quality; each object keeps the locations whose quality reaches its
        /// ⌈k⌉-th best (0-based), k the sum of its 5 best IoUs over all locations (at least 1).
        case quality
    }

    /// Assigns one image's locations by quality (see ``Assignment/quality``), reading the detached class logits
    /// [B, K, H, W] and box distances [B, 4, H, W] of `image`; the same form as ``assign(anchors:target:)``.
    public func assignByQuality(anchors: [[Float]], target: TrainingTarget, image: Int, logits: [Tensor], boxes: [Tensor]) -> [[Int]] {
        let objects = target.boxes.indices.filter { !target.ignored[$0] }
        // Every location of every level, in order: its level, cell, center and stride.
        var locations: [(level: Int, cell: Int, x: Float, y: Float, stride: Float)] = []
        for (level, levelAnchors) in anchors.enumerated() {
            for cell in 0..<(levelAnchors.count / 4) {
                let a = levelAnchors[(4 * cell)..<(4 * cell + 4)].map { $0 }
                locations.append((level, cell, (a[0] + a[2]) / 2, (a[1] + a[3]) / 2, a[2] - a[0]))
            }
        }
        let m = locations.count
        // Candidates: inside the box and near its grid-snapped center.
        var candidate = [[Bool]](repeating: [Bool](repeating: false, count: objects.count), count: m)
        for (i, location) in locations.enumerated() {
            for (j, g) in objects.enumerated() {
                let b = target.boxes[g]
                guard min(location.x - b[0], location.y - b[1], b[2] - location.x, b[3] - location.y) > 0 else { continue }
                let s = location.stride
                let cx = Float(Int((b[0] + b[2]) / 2 / s)) * s + s / 2, cy = Float(Int((b[1] + b[3]) / 2 / s)) * s + s / 2
                candidate[i][j] = abs(location.x - cx) <= s * centerSamplingRadius && abs(location.y - cy) <= s * centerSamplingRadius
            }
        }
        // Objects no location can take are left out, as the official code drops them.
        let valid = objects.indices.filter { j in (0..<m).contains { candidate[$0][j] } }
        var matched = anchors.map { [Int](repeating: Self.background, count: $0.count / 4) }
        if !valid.isEmpty {
            var quality = [[Float]](repeating: [Float](repeating: -1, count: valid.count), count: m)
            var ious = [[Float]](repeating: [Float](repeating: 0, count: valid.count), count: m)
            for (i, location) in locations.enumerated() {
                let plane = boxes[location.level].shape[2] * boxes[location.level].shape[3]
                let classes = logits[location.level].shape[1]
                let r = boxes[location.level].storage.base, x = logits[location.level].storage.base
                let predicted = Self.decodedBox(
                    anchors[location.level], cell: location.cell, distances: (0..<4).map { r[(image * 4 + $0) * plane + location.cell] })
                for (column, j) in valid.enumerated() {
                    let g = objects[j]
                    let iou = BoxOps.iou(predicted, target.boxes[g])
                    ious[i][column] = iou
                    guard candidate[i][j] else { continue }
                    let logit = x[(image * classes + target.labels[g]) * plane + location.cell]
                    let probability = 1 / (1 + expf(-logit))
                    quality[i][column] = powf(probability, 1 - qualityAlpha) * powf(iou, qualityAlpha)
                }
            }
            // Each location's best object (the first on ties), then each object's dynamic threshold.
            var best = [Float](repeating: 0, count: m), bestColumn = [Int](repeating: 0, count: m)
            for i in 0..<m {
                for column in valid.indices where column == 0 || quality[i][column] > best[i] {
                    (best[i], bestColumn[i]) = (quality[i][column], column)
                }
            }
            for column in valid.indices {
                let topIoUs = (0..<m).map { ious[$0][column] }.sorted(by: >).prefix(dynamicK)
                let k = max(1, abs(topIoUs.reduce(0, +)))
                let kept = (0..<m).map { bestColumn[$0] == column ? best[$0] : 0 }
                let threshold = kept.sorted(by: >)[Int(k.rounded(.up))]
                for i in 0..<m where bestColumn[i] == column && best[i] > 0 && best[i] >= threshold {
                    matched[locations[i].level][locations[i].cell] = objects[valid[column]]
                }
            }
        }
        markIgnored(&matched, anchors: anchors, target: target)
        return matched
    }
}
