public import Engine
public import NN
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// torchvision's RetinaNet: a ResNet-FPN (P3-P7), conv towers, nine anchors per cell. Version 1
/// (`retinanet_resnet50_fpn`): P6 from P5, plain towers; version 2 (`retinanet_resnet50_fpn_v2`): P6 from C5 and
/// GroupNorm towers without conv biases.
public final class RetinaNet: Detector {
    public let backbone: ResNetFPN
    public let classificationTower: ConvTower, regressionTower: ConvTower
    public let classLogits: Conv2d, boxRegression: Conv2d
    public let classCount: Int
    public var transform: DetectionTransform
    public var thresholds: OneStageThresholds
    public let anchors: AnchorGenerator
    public let coder = BoxCoder(weights: [1, 1, 1, 1])

    public init(
        depth: ResNet.Depth = .resnet50, baseWidth: Int = 64, fpnChannels: Int = 256, classCount: Int = 91,
        transform: DetectionTransform = DetectionTransform(),
        thresholds: OneStageThresholds = OneStageThresholds(
            scoreThreshold: 0.05, nmsThreshold: 0.5, detectionsPerImage: 300, topKCandidates: 1000),
        normalization: NormalizationKind = .frozen, version: Int = 1, seed: UInt64 = 0
    ) {
        var random = RandomNumbers(seed: seed)
        backbone = ResNetFPN(
            depth: depth, baseWidth: baseWidth, returnedLayers: [2, 3, 4], fpnChannels: fpnChannels,
            extra: version == 2 ? .p6p7FromC5 : .p6p7,
            normalization: normalization, random: &random)
        let sizes: [[Float]] = [32, 64, 128, 256, 512].map { x in
            [Float(x), Float(Int(Double(x) * pow2(1.0 / 3))), Float(Int(Double(x) * pow2(2.0 / 3)))]
        }
        anchors = AnchorGenerator(sizes: sizes, aspectRatios: Array(repeating: [0.5, 1, 2], count: 5))
        let perCell = anchors.anchorsPerLocation(level: 0)
        let style: ConvTower.Style = version == 2 ? .normActivation : .plain
        classificationTower = ConvTower(channels: fpnChannels, depth: 4, style: style, random: &random)
        regressionTower = ConvTower(channels: fpnChannels, depth: 4, style: style, random: &random)
        classLogits = Conv2d(fpnChannels, perCell * classCount, kernel: (3, 3), padding: (1, 1), random: &random)
        boxRegression = Conv2d(fpnChannels, perCell * 4, kernel: (3, 3), padding: (1, 1), random: &random)
        initializeHeadConv(classLogits, bias: classifierPriorBias, random: &random)
        initializeHeadConv(boxRegression, random: &random)
        self.classCount = classCount
        self.transform = transform
        self.thresholds = thresholds
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        Self.prefixed("backbone", backbone)
            + Self.prefixed("head.classification_head", classificationTower)
            + Self.prefixed("head.classification_head.cls_logits", classLogits)
            + Self.prefixed("head.regression_head", regressionTower) + Self.prefixed("head.regression_head.bbox_reg", boxRegression)
    }

    /// The head on one level: class logits [N, A·K, H, W] and box deltas [N, A·4, H, W].
    public func head(_ level: Tensor) -> (logits: Tensor, deltas: Tensor) {
        (classLogits(classificationTower(level)), boxRegression(regressionTower(level)))
    }

    public func forward(_ batch: DetectionTransform.Batch, keeping extras: ForwardTrace.Extra, timings: inout StageTimings) -> (
        trace: ForwardTrace, results: [ImageDetections]
    ) {
        let (features, pyramid) = backbone(batch.tensor, timings: &timings)
        let outputs = timings.measure(.head) { pyramid.map(head) }
        let trace = ForwardTrace(
            input: batch.tensor, backbone: features, pyramid: pyramid,
            head: ["cls_logits": outputs.map(\.logits), "bbox_regression": outputs.map(\.deltas)])
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
        _ outputs: [(logits: Tensor, deltas: Tensor)], image: Int, inputSize: ImageSize,
        originalSize: ImageSize, paddedSize: (Int, Int)
    ) -> ImageDetections {
        var candidates: [Candidate] = []
        for (level, output) in outputs.enumerated() {
            let height = output.logits.shape[2], width = output.logits.shape[3], cells = height * width
            let perCell = anchors.anchorsPerLocation(level: level), classes = classCount
            let logits = output.logits.scalars, deltas = output.deltas.scalars
            let logitBase = image * perCell * classes * cells, deltaBase = image * perCell * 4 * cells
            // torchvision's order: (cell, anchor, class), class fastest.
            var indices: [Int] = [], scores: [Float] = []
            for cell in 0..<cells {
                for a in 0..<perCell {
                    for k in 0..<classes {
                        let score = sigmoid(logits[logitBase + (a * classes + k) * cells + cell])
                        if score > thresholds.scoreThreshold {
                            indices.append((cell * perCell + a) * classes + k)
                            scores.append(score)
                        }
                    }
                }
            }
            let chosen = topK(indices, scores: scores, k: min(thresholds.topKCandidates, indices.count))
            let levelAnchors = anchors.anchors(
                level: level, gridHeight: height, gridWidth: width, imageHeight: paddedSize.0, imageWidth: paddedSize.1)
            for position in chosen {
                let flat = indices[position], anchorIndex = flat / classes, label = flat % classes
                let cell = anchorIndex / perCell, a = anchorIndex % perCell
                let codes = (0..<4).map { deltas[deltaBase + (a * 4 + $0) * cells + cell] }
                var box = codes.withUnsafeBufferPointer { c in
                    levelAnchors.withUnsafeBufferPointer { p in
                        let (x1, y1, x2, y2) = coder.decode(c.baseAddress!, references: p.baseAddress! + 4 * anchorIndex)
                        return [x1, y1, x2, y2]
                    }
                }
                BoxOps.clip(&box, height: inputSize.height, width: inputSize.width)
                candidates.append(
                    Candidate(
                        box: Box(box), score: scores[position], label: label, level: level, row: cell / width, column: cell % width,
                        anchor: a))
            }
        }
        return suppressed(
            candidates, nmsThreshold: thresholds.nmsThreshold, limit: thresholds.detectionsPerImage, inputSize: inputSize,
            originalSize: originalSize)
    }
}

func pow2(_ exponent: Double) -> Double { exp2(exponent) }
