public import Engine
public import NN
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// torchvision's FCOS: a ResNet-FPN (P3-P7), GroupNorm towers, class logits, box distances and centerness.
public final class FCOS: Detector {
    public let backbone: ResNetFPN
    public let classificationTower: ConvTower, regressionTower: ConvTower
    public let classLogits: Conv2d, boxRegression: Conv2d, centerness: Conv2d
    public let classCount: Int
    public var transform: DetectionTransform
    public var thresholds: OneStageThresholds
    public let anchors: AnchorGenerator

    public init(
        depth: ResNet.Depth = .resnet50, baseWidth: Int = 64, fpnChannels: Int = 256, classCount: Int = 91,
        transform: DetectionTransform = DetectionTransform(),
        thresholds: OneStageThresholds = OneStageThresholds(
            scoreThreshold: 0.2, nmsThreshold: 0.6, detectionsPerImage: 100, topKCandidates: 1000),
        normalization: NormalizationKind = .frozen, seed: UInt64 = 0
    ) {
        var random = RandomNumbers(seed: seed)
        backbone = ResNetFPN(
            depth: depth, baseWidth: baseWidth, returnedLayers: [2, 3, 4], fpnChannels: fpnChannels, extra: .p6p7,
            normalization: normalization, random: &random)
        classificationTower = ConvTower(channels: fpnChannels, depth: 4, groupNorm: true, random: &random)
        regressionTower = ConvTower(channels: fpnChannels, depth: 4, groupNorm: true, random: &random)
        classLogits = Conv2d(fpnChannels, classCount, kernel: (3, 3), padding: (1, 1), random: &random)
        boxRegression = Conv2d(fpnChannels, 4, kernel: (3, 3), padding: (1, 1), random: &random)
        centerness = Conv2d(fpnChannels, 1, kernel: (3, 3), padding: (1, 1), random: &random)
        initializeHeadConv(classLogits, bias: classifierPriorBias, random: &random)
        initializeHeadConv(boxRegression, random: &random)
        initializeHeadConv(centerness, random: &random)
        self.classCount = classCount
        self.transform = transform
        self.thresholds = thresholds
        anchors = AnchorGenerator(sizes: [[8], [16], [32], [64], [128]], aspectRatios: [[1], [1], [1], [1], [1]])
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        Self.prefixed("backbone", backbone)
            + Self.prefixed("head.classification_head", classificationTower)
            + Self.prefixed("head.classification_head.cls_logits", classLogits)
            + Self.prefixed("head.regression_head", regressionTower) + Self.prefixed("head.regression_head.bbox_reg", boxRegression)
            + Self.prefixed("head.regression_head.bbox_ctrness", centerness)
    }

    /// The head on one pyramid level: class logits [N, K, H, W], box distances [N, 4, H, W] (after ReLU, in units
    /// of the anchor size), centerness logits [N, 1, H, W].
    public func head(_ level: Tensor) -> (logits: Tensor, boxes: Tensor, centerness: Tensor) {
        let classFeatures = classificationTower(level)
        let boxFeatures = regressionTower(level)
        return (classLogits(classFeatures), boxRegression(boxFeatures).relu(), centerness(boxFeatures))
    }

    public func forward(_ batch: DetectionTransform.Batch, keeping extras: ForwardTrace.Extra, timings: inout StageTimings) -> (
        trace: ForwardTrace, results: [ImageDetections]
    ) {
        let (features, pyramid) = backbone(batch.tensor, timings: &timings)
        var towerLayers: [(classification: [TowerLayer], regression: [TowerLayer])] = []
        let outputs = timings.measure(.head) {
            pyramid.map { level -> (logits: Tensor, boxes: Tensor, centerness: Tensor) in
                guard extras.contains(.towerLayers) else { return head(level) }
                var classLayers: [TowerLayer] = [], boxLayers: [TowerLayer] = []
                let classFeatures = classificationTower(level, recording: &classLayers)
                let boxFeatures = regressionTower(level, recording: &boxLayers)
                towerLayers.append((classLayers, boxLayers))
                return (classLogits(classFeatures), boxRegression(boxFeatures).relu(), centerness(boxFeatures))
            }
        }
        var trace = ForwardTrace(
            input: batch.tensor, backbone: features, pyramid: pyramid,
            head: ["cls_logits": outputs.map(\.logits), "bbox_regression": outputs.map(\.boxes), "bbox_ctrness": outputs.map(\.centerness)])
        trace.towerLayers = towerLayers
        let results = timings.measure(.postprocess) {
            (0..<batch.tensor.shape[0]).map { image in
                postprocess(
                    outputs, image: image, inputSize: batch.imageSizes[image], originalSize: batch.originalSizes[image],
                    paddedSize: (batch.tensor.shape[2], batch.tensor.shape[3]))
            }
        }
        return (trace, results)
    }

    func postprocess(
        _ outputs: [(logits: Tensor, boxes: Tensor, centerness: Tensor)], image: Int, inputSize: ImageSize,
        originalSize: ImageSize, paddedSize: (Int, Int)
    ) -> ImageDetections {
        var candidates: [Candidate] = []
        for (level, output) in outputs.enumerated() {
            let height = output.logits.shape[2], width = output.logits.shape[3], cells = height * width
            let classes = classCount
            let logitBase = image * classes * cells, boxBase = image * 4 * cells, ctrBase = image * cells
            let distances = output.boxes.scalars
            // torchvision flattens (cell, class) with the class fastest. sqrt(σ(l)·σ(c)) > t exactly when
            // σ(l) > t²/σ(c): one threshold logit per cell, so most logits are compared without an exp.
            var indices: [Int] = [], scores: [Float] = []
            let threshold = thresholds.scoreThreshold
            output.logits.withUnsafeBufferPointer { logits in
                output.centerness.withUnsafeBufferPointer { ctr in
                    for cell in 0..<cells {
                        let quality = sigmoid(ctr[ctrBase + cell])
                        let needed = threshold * threshold / quality
                        if needed >= 1 { continue }
                        // A margin below the exact bound; the exact score decides.
                        let bound = needed > 0 ? logf(needed / (1 - needed)) - 1e-3 : -Float.infinity
                        for k in 0..<classes {
                            let logit = logits[logitBase + k * cells + cell]
                            guard logit > bound else { continue }
                            let score = (sigmoid(logit) * quality).squareRoot()
                            if score > threshold {
                                indices.append(cell * classes + k)
                                scores.append(score)
                            }
                        }
                    }
                }
            }
            let chosen = topK(indices, scores: scores, k: min(thresholds.topKCandidates, indices.count))
            let levelAnchors = anchors.anchors(
                level: level, gridHeight: height, gridWidth: width, imageHeight: paddedSize.0, imageWidth: paddedSize.1)
            for position in chosen {
                let flat = indices[position], cell = flat / classes, label = flat % classes
                let codes = (0..<4).map { distances[boxBase + $0 * cells + cell] }
                var box = codes.withUnsafeBufferPointer { c in
                    levelAnchors.withUnsafeBufferPointer { a in
                        let (x1, y1, x2, y2) = BoxLinearCoder.decode(c.baseAddress!, anchor: a.baseAddress! + 4 * cell)
                        return [x1, y1, x2, y2]
                    }
                }
                BoxOps.clip(&box, height: inputSize.height, width: inputSize.width)
                candidates.append(
                    Candidate(
                        box: Box(box), score: scores[position], label: label, level: level, row: cell / width, column: cell % width,
                        anchor: 0))
            }
        }
        return suppressed(
            candidates, nmsThreshold: thresholds.nmsThreshold, limit: thresholds.detectionsPerImage, inputSize: inputSize,
            originalSize: originalSize)
    }
}

/// The logistic function, split by sign so that exp never overflows.
@inline(__always)
public func sigmoid(_ x: Float) -> Float { x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)) }
