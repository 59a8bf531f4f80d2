public import Detection
public import Engine

#if canImport(Glibc)
    import Glibc
#endif

/// One training image's ground truth, in the network input's pixels.
public struct TrainingTarget: Sendable {
    /// (x1, y1, x2, y2) per object.
    public var boxes: [[Float]]
    /// Detector labels (COCO category ids).
    public var labels: [Int]
    /// Ignore regions: neither objects to find nor background.
    public var ignored: [Bool]

    public init(boxes: [[Float]], labels: [Int], ignored: [Bool]) {
        self.boxes = boxes
        self.labels = labels
        self.ignored = ignored
    }
}

/// torchvision's FCOS loss: center sampling (radius 1.5 strides), FPN level ranges (distances in [4, 8] anchor
/// sizes, the first level from 0 and the last without bound), the smallest box wins where several match; sigmoid
/// focal loss (α 0.25, γ 2) over every class and location, GIoU loss on the decoded boxes and centerness BCE on the
/// foreground, each divided by the number of foreground locations. Locations inside an ignore region that match no
/// object leave the classification loss.
public struct FCOSLoss: Sendable {
    public var centerSamplingRadius: Float = 1.5
    public var alpha: Float = 0.25
    public var gamma: Float = 2
    public var assignment = Assignment.torchvision
    /// The official quality assignment's IoU exponent (its class-probability exponent is 1 − this).
    public var qualityAlpha: Float = 0.8
    /// The official quality assignment's number of best IoUs summed into each object's k.
    public var dynamicK = 5

    public init() {}

    /// The loss terms: scalars that carry the graph back to the head outputs.
    public struct Terms {
        public var classification: Tensor
        public var regression: Tensor
        public var centerness: Tensor
        public var foreground: Int
        /// Per image and level, each location's object (``FCOSLoss/background`` or ``FCOSLoss/ignoredLocation``).
        public var assignments: [[[Int]]]
        public var total: Tensor { classification + regression + centerness }
    }

    /// What each location of a level learns: the index of its object, `background`, or `ignored`.
    public static let background = -1
    public static let ignoredLocation = -2

    /// Assigns every location of one image: `anchors` holds each level's anchor boxes (4 values per cell, as the
    /// detector's ``AnchorGenerator`` makes them; their centers are the locations, their widths the sizes).
    public func assign(anchors: [[Float]], target: TrainingTarget) -> [[Int]] {
        let objects = target.boxes.indices.filter { !target.ignored[$0] }
        var assigned = anchors.enumerated().map { level, levelAnchors in
            let cells = levelAnchors.count / 4
            var matched = [Int](repeating: Self.background, count: cells)
            for cell in 0..<cells {
                let a = Array(levelAnchors[(4 * cell)..<(4 * cell + 4)])
                let x = (a[0] + a[2]) / 2, y = (a[1] + a[3]) / 2, size = a[2] - a[0]
                let lower: Float = level == 0 ? 0 : 4 * size, upper: Float = level == anchors.count - 1 ? .infinity : 8 * size
                var best = Self.background
                var bestArea = Float.infinity
                for g in objects {
                    let b = target.boxes[g]
                    let cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2
                    guard max(abs(x - cx), abs(y - cy)) < centerSamplingRadius * size else { continue }
                    let distances = [x - b[0], y - b[1], b[2] - x, b[3] - y]
                    guard distances.min()! > 0 else { continue }
                    let reach = distances.max()!
                    guard reach > lower && reach < upper else { continue }
                    let area = (b[2] - b[0]) * (b[3] - b[1])
                    if area < bestArea { (best, bestArea) = (g, area) }
                }
                matched[cell] = best
            }
            return matched
        }
        markIgnored(&assigned, anchors: anchors, target: target)
        return assigned
    }

    /// Locations matched to no object but inside an ignore region leave the classification loss.
    func markIgnored(_ matched: inout [[Int]], anchors: [[Float]], target: TrainingTarget) {
        let ignores = target.boxes.indices.filter { target.ignored[$0] }
        guard !ignores.isEmpty else { return }
        for (level, levelAnchors) in anchors.enumerated() {
            for cell in 0..<(levelAnchors.count / 4) where matched[level][cell] == Self.background {
                let x = (levelAnchors[4 * cell] + levelAnchors[4 * cell + 2]) / 2,
                    y = (levelAnchors[4 * cell + 1] + levelAnchors[4 * cell + 3]) / 2
                if ignores.contains(where: { i in
                    let b = target.boxes[i]
                    return x > b[0] && x < b[2] && y > b[1] && y < b[3]
                }) {
                    matched[level][cell] = Self.ignoredLocation
                }
            }
        }
    }

    /// Assigns one image's locations by ``assignment`` (the quality assignment reads the detached predictions).
    public func assign(anchors: [[Float]], target: TrainingTarget, image: Int, logits: [Tensor], boxes: [Tensor]) -> [[Int]] {
        switch assignment {
        case .torchvision: assign(anchors: anchors, target: target)
        case .quality: assignByQuality(anchors: anchors, target: target, image: image, logits: logits, boxes: boxes)
        }
    }

    /// The loss of a batch: per level, class logits [B, K, H, W], box distances [B, 4, H, W] (after ReLU, in anchor
    /// sizes) and centerness logits [B, 1, H, W]; one target per image; each level's anchors (see
    /// ``assign(anchors:target:)``).
    public func callAsFunction(
        logits: [Tensor], boxes: [Tensor], centerness: [Tensor], targets: [TrainingTarget], anchors: [[Float]]
    ) -> Terms {
        let batch = logits[0].shape[0]
        let levels = logits.indices.map { (height: logits[$0].shape[2], width: logits[$0].shape[3]) }
        let assignments = targets.indices.map { assign(anchors: anchors, target: targets[$0], image: $0, logits: logits, boxes: boxes) }
        let foreground = assignments.reduce(0) { total, image in total + image.reduce(0) { $0 + $1.filter { $0 >= 0 }.count } }
        let normalizer = Float(max(foreground, 1))
        var classificationValue: Float = 0, regressionValue: Float = 0, centernessValue: Float = 0
        var classificationGradients: [Tensor] = [], regressionGradients: [Tensor] = [], centernessGradients: [Tensor] = []
        for (level, geometry) in levels.enumerated() {
            let classes = logits[level].shape[1], plane = geometry.height * geometry.width
            let x = logits[level].storage.base, r = boxes[level].storage.base, q = centerness[level].storage.base
            let classGradient = Tensor(zeros: logits[level].shape), boxGradient = Tensor(zeros: boxes[level].shape)
            let centerGradient = Tensor(zeros: centerness[level].shape)
            let dx = classGradient.storage.base, dr = boxGradient.storage.base, dq = centerGradient.storage.base
            for image in 0..<batch {
                let matched = assignments[image][level]
                let target = targets[image]
                for cell in 0..<plane {
                    let g = matched[cell]
                    if g == Self.ignoredLocation { continue }
                    let label = g >= 0 ? target.labels[g] : -1
                    for k in 0..<classes {
                        let index = (image * classes + k) * plane + cell
                        let (value, derivative) = focal(x[index], target: k == label ? 1 : 0)
                        classificationValue += value
                        dx[index] = derivative / normalizer
                    }
                    guard g >= 0 else { continue }
                    let a = anchors[level]
                    let cx = (a[4 * cell] + a[4 * cell + 2]) / 2, cy = (a[4 * cell + 1] + a[4 * cell + 3]) / 2,
                        s = a[4 * cell + 2] - a[4 * cell]
                    let predicted = Self.decodedBox(
                        anchors[level], cell: cell, distances: (0..<4).map { r[(image * 4 + $0) * plane + cell] })
                    let (loss, boxDerivative) = Self.giouLoss(predicted, target.boxes[g])
                    regressionValue += loss
                    let chain: [Float] = [-s, -s, s, s]
                    for c in 0..<4 { dr[(image * 4 + c) * plane + cell] = boxDerivative[c] * chain[c] / normalizer }
                    // Centerness target from the object's distances to this location.
                    let b = target.boxes[g]
                    let (left, top, right, bottom) = (cx - b[0], cy - b[1], b[2] - cx, b[3] - cy)
                    let quality = ((min(left, right) / max(left, right)) * (min(top, bottom) / max(top, bottom))).squareRoot()
                    let logit = q[image * plane + cell]
                    centernessValue += max(logit, 0) - logit * quality + log1pf(expf(-abs(logit)))
                    dq[image * plane + cell] = (1 / (1 + expf(-logit)) - quality) / normalizer
                }
            }
            classificationGradients.append(classGradient)
            regressionGradients.append(boxGradient)
            centernessGradients.append(centerGradient)
        }
        return Terms(
            classification: Self.scalarLoss(classificationValue / normalizer, inputs: logits, gradients: classificationGradients),
            regression: Self.scalarLoss(regressionValue / normalizer, inputs: boxes, gradients: regressionGradients),
            centerness: Self.scalarLoss(centernessValue / normalizer, inputs: centerness, gradients: centernessGradients),
            foreground: foreground, assignments: assignments)
    }

    /// The box that distances (l, t, r, b, in anchor sizes) predict at an anchor, as the detector decodes it.
    static func decodedBox(_ anchors: [Float], cell: Int, distances: [Float]) -> [Float] {
        let (x1, y1, x2, y2) = distances.withUnsafeBufferPointer { d in
            anchors.withUnsafeBufferPointer { a in BoxLinearCoder.decode(d.baseAddress!, anchor: a.baseAddress! + 4 * cell) }
        }
        return [x1, y1, x2, y2]
    }

    /// Sigmoid focal loss of one logit and its derivative.
    func focal(_ x: Float, target t: Float) -> (Float, Float) {
        let p = 1 / (1 + expf(-x))
        let ce = max(x, 0) - x * t + log1pf(expf(-abs(x)))
        let pt = p * t + (1 - p) * (1 - t)
        let alphaT = alpha * t + (1 - alpha) * (1 - t)
        let miss = 1 - pt
        let modulation = powf(miss, gamma)
        let value = alphaT * ce * modulation
        let derivative = alphaT * ((p - t) * modulation - ce * gamma * powf(miss, gamma - 1) * (2 * t - 1) * p * (1 - p))
        return (value, derivative)
    }

    /// torchvision's `generalized_box_iou_loss` (eps 1e-7) of one box pair and its derivative with respect to the
    /// predicted box's (x1, y1, x2, y2).
    static func giouLoss(_ p: [Float], _ g: [Float]) -> (Float, [Float]) {
        let eps: Float = 1e-7
        let areaP = (p[2] - p[0]) * (p[3] - p[1]), areaG = (g[2] - g[0]) * (g[3] - g[1])
        let iw = min(p[2], g[2]) - max(p[0], g[0]), ih = min(p[3], g[3]) - max(p[1], g[1])
        let overlapping = iw > 0 && ih > 0
        let intersection = overlapping ? iw * ih : 0
        let union = areaP + areaG - intersection
        let iou = intersection / (union + eps)
        let cw = max(p[2], g[2]) - min(p[0], g[0]), ch = max(p[3], g[3]) - min(p[1], g[1])
        let enclosing = cw * ch
        let loss = 1 - (iou - (enclosing - union) / (enclosing + eps))
        let dArea: [Float] = [-(p[3] - p[1]), -(p[2] - p[0]), p[3] - p[1], p[2] - p[0]]
        let dIntersection: [Float] =
            overlapping
            ? [p[0] > g[0] ? -ih : 0, p[1] > g[1] ? -iw : 0, p[2] < g[2] ? ih : 0, p[3] < g[3] ? iw : 0] : [0, 0, 0, 0]
        let dEnclosing: [Float] = [p[0] < g[0] ? -ch : 0, p[1] < g[1] ? -cw : 0, p[2] > g[2] ? ch : 0, p[3] > g[3] ? cw : 0]
        let derivative = (0..<4).map { c -> Float in
            let dUnion = dArea[c] - dIntersection[c]
            let dIoU = (dIntersection[c] * (union + eps) - intersection * dUnion) / ((union + eps) * (union + eps))
            let dPenalty =
                ((dEnclosing[c] - dUnion) * (enclosing + eps) - (enclosing - union) * dEnclosing[c])
                / ((enclosing + eps) * (enclosing + eps))
            return -(dIoU - dPenalty)
        }
        return (loss, derivative)
    }

    /// A scalar whose gradient with respect to `inputs` is `gradients` (precomputed with the value).
    static func scalarLoss(_ value: Float, inputs: [Tensor], gradients: [Tensor]) -> Tensor {
        let result = Tensor(shape: [1], values: [value])
        guard Tensor.recordsGradient(inputs) else { return result }
        return result.recorded("fcos_loss", inputs: inputs) { cotangent, needed in
            let scale = cotangent.scalars[0]
            return gradients.enumerated().map { index, gradient in needed[index] ? gradient * scale : nil }
        }
    }
}
