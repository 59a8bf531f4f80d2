public import Detection
public import Engine
import Explain
import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// Odam-Train for FCOS (paper Eq. 3, the official `fcos_odamTrain` code): heat maps of positive predictions should
/// agree with the best prediction of the same object (consistency) and differ from those of overlapping other
/// objects (separation).
///
/// Per image, the positive locations (the FCOS assignment) are sorted by the IoU of their detached predicted box
/// with their object and the best `predictionsPerImage` kept. Each one's map is its object's class-logit gradient
/// (detached, constant) times the level's features (which keep their graph), resized to the input/16 grid and
/// L2-normalized: by default the exact gradient over the whole level (autograd through the head), or with
/// `maps: official` the official code's reversed head on the 11x11 window of its FPN level. With `s = ⟨ĥ_ref, ĥ_j⟩`
/// clamped to [1e-4, 1 − 1e-4], the image's loss is `(−Σ_same log s − Σ_other log(1 − s)) / max(1, pairs)`: pairs
/// of the reference with samples of the same object, and with samples of other objects whose predicted boxes
/// overlap the reference's. One reference per object (the best IoU), or one per image as released
/// (`perObjectReference` false). The batch loss is `weight` times the mean over the batch's images (the official
/// `0.5 · Σ` over its two images per GPU is `1.0 ×` the mean, whatever the batch size). It reaches the network only through the
/// FPN features (the head gets no gradient from it), as the official code.
package struct OdamTrainLoss {
    package var settings: OdamTrainSettings

    package init(settings: OdamTrainSettings) { self.settings = settings }

    /// One positive sample of an image.
    package struct Sample {
        var level: Int
        var cell: Int
        var object: Int
        var label: Int
        var iou: Float
        var box: [Float]

        package init(level: Int, cell: Int, object: Int, label: Int, iou: Float, box: [Float]) {
            (self.level, self.cell, self.object, self.label, self.iou, self.box) = (level, cell, object, label, iou, box)
        }
    }

    /// The loss, with its gradient recorded against `pyramid`.
    ///
    /// - Parameters:
    ///   - trace: the batch's pyramid (recorded), head outputs and classification tower layers.
    ///   - assignments: per image and level, each location's object (``FCOSLoss/assign(anchors:target:)``).
    func callAsFunction(
        detector: FCOS, trace: ForwardTrace, targets: [TrainingTarget], anchors: [[Float]], assignments: [[[Int]]],
        inputSizes: [ImageSize]
    ) -> (loss: Tensor, pairs: Int) {
        let pyramid = trace.pyramid
        let gradientsByLevel = pyramid.map { Tensor(zeros: $0.shape) }
        var total: Float = 0
        var pairCount = 0
        let head = FCOSReversedHead(detector: detector)
        for image in targets.indices {
            let samples = positives(trace: trace, image: image, target: targets[image], anchors: anchors, assignments: assignments[image])
            guard samples.count >= 2 else { continue }
            let grid = FCOSReversedHead.candidateGrid(inputSize: inputSizes[image])
            // The windows: values, detached gradient and where they sit.
            var maps = [ResizedMap?](repeating: nil, count: samples.count)
            let candidates = samples.map { s in
                Candidate(
                    box: Box(s.box), score: 1, label: s.label, level: s.level, row: s.cell / pyramid[s.level].shape[3],
                    column: s.cell % pyramid[s.level].shape[3], anchor: 0)
            }
            let result = ImageDetections(candidates: candidates, kept: [], inputSize: inputSizes[image], originalSize: inputSizes[image])
            switch settings.maps {
            case .official:
                withoutGradients {
                    head.forEachWindow(
                        trace: trace, result: result, image: image, predictions: Array(candidates.indices), targets: [.logit]
                    ) {
                        window in
                        maps[window.member] = ResizedMap(window: window, grid: grid, inputSize: inputSizes[image])
                    }
                }
            case .exact:
                // Autograd through the head on detached copies of the levels: the gradients stay constants, as in
                // the official code (no second-order term), and the loss reaches the network through the features.
                let explainer = FCOSExplainer(detector: detector, seedsPerPass: 16)
                let recorded = explainer.record(trace: trace, image: image, levels: Set(samples.map(\.level)), targets: [.logit])
                let padded = (trace.input.shape[2], trace.input.shape[3])
                withoutGradients {
                    explainer.logitGradients(recorded, result: result, predictions: Array(candidates.indices)) { member, gradient in
                        let level = samples[member].level
                        let features = pyramid[level]
                        let channels = features.shape[1], height = features.shape[2], width = features.shape[3]
                        maps[member] = ResizedMap(
                            levelGradient: gradient, features: features.storage.base + image * channels * height * width,
                            channels: channels,
                            levelSize: ImageSize(height: height, width: width),
                            stride: (Float(padded.0) / Float(height), Float(padded.1) / Float(width)),
                            grid: grid,
                            inputSize: inputSizes[image])
                    }
                }
            }
            let resized = maps.map { $0! }
            let (value, derivatives, pairs) = imageLoss(samples: samples, maps: resized)
            guard pairs > 0 else { continue }
            total += value
            pairCount += pairs
            for (k, map) in resized.enumerated() where derivatives[k].contains(where: { $0 != 0 }) {
                map.backpropagate(
                    derivatives[k], into: gradientsByLevel[samples[k].level], image: image, scale: settings.weight / Float(targets.count),
                    levelSize: (pyramid[samples[k].level].shape[2], pyramid[samples[k].level].shape[3]))
            }
        }
        let mean = settings.weight * total / Float(max(targets.count, 1))
        return (FCOSLoss.scalarLoss(mean, inputs: pyramid, gradients: gradientsByLevel), pairCount)
    }

    /// The image's positives, best IoU first, at most `predictionsPerImage`.
    func positives(trace: ForwardTrace, image: Int, target: TrainingTarget, anchors: [[Float]], assignments: [[Int]]) -> [Sample] {
        var samples: [Sample] = []
        for (level, matched) in assignments.enumerated() {
            let boxes = trace.head["bbox_regression"]![level]
            let plane = boxes.shape[2] * boxes.shape[3]
            for (cell, object) in matched.enumerated() where object >= 0 {
                let box = FCOSLoss.decodedBox(
                    anchors[level], cell: cell, distances: (0..<4).map { boxes.storage.base[(image * 4 + $0) * plane + cell] })
                samples.append(
                    Sample(
                        level: level, cell: cell, object: object, label: target.labels[object], iou: BoxOps.iou(box, target.boxes[object]),
                        box: box))
            }
        }
        samples.sort { $0.iou > $1.iou }
        return Array(samples.prefix(settings.predictionsPerImage))
    }

    /// The image's loss, its derivative with respect to each sample's normalized map, and the number of pairs.
    package func imageLoss(samples: [Sample], maps: [ResizedMap]) -> (Float, [[Float]], Int) {
        var references: [Int] = []
        if settings.perObjectReference {
            var best: [Int: Int] = [:]
            for (k, sample) in samples.enumerated() where best[sample.object] == nil { best[sample.object] = k }  // sorted by IoU
            references = best.values.sorted()
        } else {
            references = [0]
        }
        var pairs: [(reference: Int, other: Int, same: Bool)] = []
        for r in references {
            for j in samples.indices {
                if samples[j].object == samples[r].object {
                    pairs.append((r, j, true))
                } else if BoxOps.iou(samples[r].box, samples[j].box) > 0 {
                    pairs.append((r, j, false))
                }
            }
        }
        var derivatives = maps.map { [Float](repeating: 0, count: $0.values.count) }
        guard !pairs.isEmpty else { return (0, derivatives, 0) }
        let normalizer = Float(max(pairs.count, 1))
        var value: Float = 0
        for (r, j, same) in pairs {
            let raw = maps[r].dot(maps[j])
            let s = min(max(raw, 1e-4), 1 - 1e-4)
            value += same ? -logf(s) : -logf(1 - s)
            guard raw == s else { continue }  // clamped: no gradient
            let ds = (same ? -1 / s : 1 / (1 - s)) / normalizer
            maps[r].accumulateDot(with: maps[j], scale: ds, into: &derivatives[r])
            maps[j].accumulateDot(with: maps[r], scale: ds, into: &derivatives[j])
        }
        return (value / normalizer, derivatives, pairs.count)
    }
}

/// A sample's map resized onto the input/16 grid and L2-normalized, over the rectangle it reaches, with what the
/// backward pass needs. The map lives on a patch of its level: the reversed head's 11x11 window, or the whole level
/// for exact maps.
package struct ResizedMap {
    var rectangle: CandidateMaps.Rectangle
    /// Normalized values over the rectangle, row-major.
    var values: [Float]
    var norm: Float
    /// Pre-normalization values' taps: for each rectangle cell, up to four (patch index, weight).
    var taps: [[(Int, Float)]]
    /// The patch's raw values (ReLU(Σ g·A)) and detached gradient [C, patchHeight, patchWidth], and where it sits on
    /// the level (its top-left cell, which may lie outside the level for a window at the border).
    var patch: [Float]
    var gradient: [Float]
    var channels: Int
    var top: Int, left: Int, patchHeight: Int, patchWidth: Int

    /// The reversed head's window map (the official code's Odam-Train maps).
    package init(window: FCOSReversedHead.Window, grid: ImageSize, inputSize: ImageSize) {
        let side = FCOSReversedHead.side, radius = FCOSReversedHead.radius
        self.init(
            patch: window.values.scalars,
            gradient: Array(UnsafeBufferPointer(start: window.gradient, count: window.channels * side * side)),
            channels: window.channels, top: window.row - radius, left: window.column - radius, patchSize: (side, side),
            levelSize: window.levelSize, stride: window.stride, grid: grid, inputSize: inputSize)
    }

    /// An exact map over its whole level: the gradient [C, H, W] of the sample's class logit with respect to the level
    /// and the level's features [C, H, W] (one image).
    package init(
        levelGradient: UnsafePointer<Float>, features: UnsafePointer<Float>, channels: Int, levelSize: ImageSize,
        stride: (Float, Float), grid: ImageSize, inputSize: ImageSize
    ) {
        let plane = levelSize.height * levelSize.width
        var raw = [Float](repeating: 0, count: plane)
        for c in 0..<channels {
            let g = levelGradient + c * plane, a = features + c * plane
            for i in 0..<plane { raw[i] += g[i] * a[i] }
        }
        self.init(
            patch: raw.map { max($0, 0) }, gradient: Array(UnsafeBufferPointer(start: levelGradient, count: channels * plane)),
            channels: channels, top: 0, left: 0, patchSize: (levelSize.height, levelSize.width), levelSize: levelSize, stride: stride,
            grid: grid,
            inputSize: inputSize)
    }

    init(
        patch: [Float], gradient: [Float], channels: Int, top: Int, left: Int, patchSize: (Int, Int), levelSize: ImageSize,
        stride: (Float, Float), grid: ImageSize, inputSize: ImageSize
    ) {
        (self.patch, self.gradient, self.channels, self.top, self.left) = (patch, gradient, channels, top, left)
        (patchHeight, patchWidth) = patchSize
        // The level's cells over the unpadded input (as HeatMap crops) and the bilinear taps (align_corners false).
        let (height, width) = HeatMap.croppedSize(levelSize: levelSize, stride: stride, inputSize: inputSize)
        let mode = Tensor.InterpolationMode.bilinear(alignCorners: false)
        let rows = InterpolationTaps(inSize: height, outSize: grid.height, mode: mode)
        let columns = InterpolationTaps(inSize: width, outSize: grid.width, mode: mode)
        // The patch's cells inside the crop; grid cells with a nonzero tap into them form the rectangle.
        let firstRow = max(top, 0), lastRow = min(top + patchHeight - 1, height - 1)
        let firstColumn = max(left, 0), lastColumn = min(left + patchWidth - 1, width - 1)
        let (patchTop, patchLeft, patchColumns) = (top, left, patchWidth)
        let index = { (y: Int, x: Int) -> Int? in
            guard y >= firstRow && y <= lastRow && x >= firstColumn && x <= lastColumn else { return nil }
            return (y - patchTop) * patchColumns + x - patchLeft
        }
        func reach(_ taps: InterpolationTaps, _ low: Int, _ high: Int) -> Range<Int> {
            let touching = taps.low.indices.filter { o in
                (taps.low[o] >= low && taps.low[o] <= high && taps.lowWeight[o] != 0)
                    || (taps.high[o] >= low && taps.high[o] <= high && taps.highWeight[o] != 0)
            }
            guard let first = touching.first, let last = touching.last, low <= high else { return 0..<0 }
            return first..<(last + 1)
        }
        let outRows = reach(rows, firstRow, lastRow), outColumns = reach(columns, firstColumn, lastColumn)
        rectangle = CandidateMaps.Rectangle(
            row: outRows.lowerBound, column: outColumns.lowerBound, rows: outRows.count, columns: outColumns.count)
        var taps: [[(Int, Float)]] = []
        var raw: [Float] = []
        for oy in outRows {
            for ox in outColumns {
                var cell: [(Int, Float)] = []
                var value: Float = 0
                for (y, wy) in [(rows.low[oy], rows.lowWeight[oy]), (rows.high[oy], rows.highWeight[oy])] {
                    for (x, wx) in [(columns.low[ox], columns.lowWeight[ox]), (columns.high[ox], columns.highWeight[ox])] {
                        if let i = index(y, x), wy * wx != 0 {
                            cell.append((i, wy * wx))
                            value += wy * wx * patch[i]
                        }
                    }
                }
                taps.append(cell)
                raw.append(value)
            }
        }
        self.taps = taps
        let length = max(raw.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        norm = length
        values = raw.map { $0 / length }
    }

    /// ⟨self, other⟩ over the cells both cover.
    func dot(_ other: ResizedMap) -> Float {
        var sum: Float = 0
        forOverlap(other) { i, j in sum += values[i] * other.values[j] }
        return sum
    }

    /// derivative[i] += scale · other[j] over the overlap (d⟨a, b⟩/da = b).
    func accumulateDot(with other: ResizedMap, scale: Float, into derivative: inout [Float]) {
        forOverlap(other) { i, j in derivative[i] += scale * other.values[j] }
    }

    func forOverlap(_ other: ResizedMap, _ body: (Int, Int) -> Void) {
        let a = rectangle, b = other.rectangle
        let top = max(a.row, b.row), bottom = min(a.row + a.rows, b.row + b.rows)
        let left = max(a.column, b.column), right = min(a.column + a.columns, b.column + b.columns)
        guard top < bottom && left < right else { return }
        for y in top..<bottom {
            for x in left..<right { body((y - a.row) * a.columns + x - a.column, (y - b.row) * b.columns + x - b.column) }
        }
    }

    /// Adds the gradient of the loss with respect to the level's features: from d loss/d ĥ through the
    /// normalization, the resize and the ReLU, times the detached gradient.
    package func backpropagate(_ derivative: [Float], into levelGradient: Tensor, image: Int, scale: Float, levelSize: (Int, Int)) {
        // Through the L2 normalization: (d − ĥ (ĥ·d)) / ‖h‖.
        let projection = zip(values, derivative).reduce(0) { $0 + $1.0 * $1.1 }
        var patchDerivative = [Float](repeating: 0, count: patchHeight * patchWidth)
        for (k, cellTaps) in taps.enumerated() {
            let d = (derivative[k] - values[k] * projection) / norm
            for (i, weight) in cellTaps { patchDerivative[i] += d * weight }
        }
        let (height, width) = levelSize
        let target = levelGradient.storage.base
        let patchPlane = patchHeight * patchWidth
        for dy in 0..<patchHeight {
            let y = top + dy
            guard y >= 0 && y < height else { continue }
            for dx in 0..<patchWidth {
                let x = left + dx
                let i = dy * patchWidth + dx
                // ReLU: no gradient where the map was cut to zero.
                guard x >= 0 && x < width, patch[i] > 0, patchDerivative[i] != 0 else { continue }
                let d = patchDerivative[i] * scale
                for c in 0..<channels { target[((image * channels + c) * height + y) * width + x] += d * gradient[c * patchPlane + i] }
            }
        }
    }
}
