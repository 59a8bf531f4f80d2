public import Engine
public import NN
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// Faster R-CNN's region-proposal settings (torchvision's test-time defaults).
public struct ProposalSettings: Sendable, Codable, Equatable {
    public var preNMSTopN = 1000
    public var postNMSTopN = 1000
    public var nmsThreshold: Float = 0.7
    public var scoreThreshold: Float = 0
    public var minSize: Float = 1e-3
    public init() {}
}

/// Faster R-CNN's box-head settings (torchvision's defaults).
public struct BoxHeadSettings: Sendable, Codable, Equatable {
    public var scoreThreshold: Float = 0.05
    public var nmsThreshold: Float = 0.5
    public var detectionsPerImage = 100
    public init() {}
}

/// torchvision's Faster R-CNN: ResNet-FPN (P2-P6), RPN, MultiScaleRoIAlign, a box head, FastRCNNPredictor.
/// Version 1 (`fasterrcnn_resnet50_fpn`): one RPN conv and TwoMLPHead. Version 2 (`fasterrcnn_resnet50_fpn_v2`):
/// batch-norm FPN blocks, two RPN convs, and FastRCNNConvFCHead (four 3x3 conv + batch-norm + ReLU, one linear).
public final class FasterRCNN: Detector {
    public let backbone: ResNetFPN
    public let rpnConvs: [Conv2d]
    public let rpnObjectness: Conv2d, rpnDeltas: Conv2d
    /// Version 2's box-head convolutions (empty in version 1).
    public let boxConvs: [ConvNorm]
    /// Version 1: fc6 and fc7; version 2: the one linear layer after the convolutions.
    public let boxLinears: [Linear]
    public let classScore: Linear, boxDeltas: Linear
    public let version: Int
    public let classCount: Int
    public var transform: DetectionTransform
    public var proposals: ProposalSettings
    public var boxHead: BoxHeadSettings
    public let anchors: AnchorGenerator
    let rpnCoder = BoxCoder(weights: [1, 1, 1, 1])
    public let boxCoder = BoxCoder(weights: [10, 10, 5, 5])
    public let poolSize = 7
    public let samplingRatio = 2

    public init(
        depth: ResNet.Depth = .resnet50, baseWidth: Int = 64, fpnChannels: Int = 256, representationSize: Int = 1024,
        classCount: Int = 91, transform: DetectionTransform = DetectionTransform(), proposals: ProposalSettings = ProposalSettings(),
        boxHead: BoxHeadSettings = BoxHeadSettings(), normalization: NormalizationKind = .frozen, version: Int = 1, seed: UInt64 = 0
    ) {
        var random = RandomNumbers(seed: seed)
        self.version = version
        backbone = ResNetFPN(
            depth: depth, baseWidth: baseWidth, returnedLayers: [1, 2, 3, 4], fpnChannels: fpnChannels, extra: .maxPool,
            normalization: normalization, fpnBatchNorm: version == 2, random: &random)
        anchors = AnchorGenerator(sizes: [[32], [64], [128], [256], [512]], aspectRatios: Array(repeating: [0.5, 1, 2], count: 5))
        let perCell = anchors.anchorsPerLocation(level: 0)
        rpnConvs = (0..<(version == 2 ? 2 : 1)).map { _ in
            Conv2d(fpnChannels, fpnChannels, kernel: (3, 3), padding: (1, 1), random: &random)
        }
        rpnObjectness = Conv2d(fpnChannels, perCell, kernel: (1, 1), random: &random)
        rpnDeltas = Conv2d(fpnChannels, perCell * 4, kernel: (1, 1), random: &random)
        for conv in rpnConvs + [rpnObjectness, rpnDeltas] { initializeHeadConv(conv, random: &random) }
        if version == 2 {
            boxConvs = (0..<4).map { i in
                ConvNorm(
                    fpnChannels, fpnChannels, kernel: 3, padding: 1, normalization: .batchNorm, names: ("\(i).0", "\(i).1"),
                    random: &random)
            }
            boxLinears = [Linear(fpnChannels * 49, representationSize, random: &random)]
        } else {
            boxConvs = []
            boxLinears = [
                Linear(fpnChannels * 49, representationSize, random: &random),
                Linear(representationSize, representationSize, random: &random),
            ]
        }
        classScore = Linear(representationSize, classCount, random: &random)
        boxDeltas = Linear(representationSize, classCount * 4, random: &random)
        self.classCount = classCount
        self.transform = transform
        self.proposals = proposals
        self.boxHead = boxHead
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var all = Self.prefixed("backbone", backbone)
        for (i, conv) in rpnConvs.enumerated() { all += Self.prefixed("rpn.head.conv.\(i).0", conv) }
        all += Self.prefixed("rpn.head.cls_logits", rpnObjectness) + Self.prefixed("rpn.head.bbox_pred", rpnDeltas)
        for conv in boxConvs { all += Self.prefixed("roi_heads.box_head", conv) }
        if version == 2 {
            all += Self.prefixed("roi_heads.box_head.5", boxLinears[0])
        } else {
            all += Self.prefixed("roi_heads.box_head.fc6", boxLinears[0]) + Self.prefixed("roi_heads.box_head.fc7", boxLinears[1])
        }
        return all + Self.prefixed("roi_heads.box_predictor.cls_score", classScore)
            + Self.prefixed("roi_heads.box_predictor.bbox_pred", boxDeltas)
    }

    /// Spatial scale of each RoI level (P2-P5) relative to the unpadded input, as `MultiScaleRoIAlign` infers it.
    public func roiScales(_ pyramid: [Tensor], imageSizes: [ImageSize]) -> [Float] {
        let maxHeight = imageSizes.map(\.height).max()!
        return pyramid.prefix(4).map { level in
            Float(exp2((log2(Double(level.shape[2]) / Double(maxHeight))).rounded(.toNearestOrEven)))
        }
    }

    /// The box head on RoI features [K, C, 7, 7]: class logits [K, classes] and deltas [K, classes·4].
    public func boxHeadOutputs(_ pooled: Tensor) -> (logits: Tensor, deltas: Tensor) {
        var features = pooled
        for conv in boxConvs { features = conv(features, adding: nil, relu: true) }
        var representation = features.reshaped([features.shape[0], -1])
        for linear in boxLinears { representation = linear(representation).relu() }
        return (classScore(representation), boxDeltas(representation))
    }

    public func forward(_ batch: DetectionTransform.Batch, keeping extras: ForwardTrace.Extra, timings: inout StageTimings) -> (
        trace: ForwardTrace, results: [ImageDetections]
    ) {
        let (features, pyramid) = backbone(batch.tensor, timings: &timings)
        let images = batch.tensor.shape[0]
        let paddedSize = (batch.tensor.shape[2], batch.tensor.shape[3])
        let (rois, roiOwners) = timings.measure(.head) { () -> (Tensor, [Int]) in
            let rpnOutputs = pyramid.map { level -> (Tensor, Tensor) in
                var hidden = level
                for conv in rpnConvs { hidden = conv(hidden).relu() }
                return (rpnObjectness(hidden), rpnDeltas(hidden))
            }
            var rows: [Float] = [], owners: [Int] = []
            for image in 0..<images {
                for box in proposalsFor(image: image, rpnOutputs, inputSize: batch.imageSizes[image], paddedSize: paddedSize) {
                    rows += [Float(image)] + box
                    owners.append(image)
                }
            }
            return (Tensor(shape: [owners.count, 5], values: rows), owners)
        }
        let (logits, deltas) = timings.measure(.head) { () -> (Tensor, Tensor) in
            let pooled = Tensor.multiScaleRoIAlign(
                Array(pyramid.prefix(4)), scales: roiScales(pyramid, imageSizes: batch.imageSizes), boxes: rois,
                outputSize: (poolSize, poolSize), samplingRatio: samplingRatio)
            return boxHeadOutputs(pooled)
        }
        let trace = ForwardTrace(
            input: batch.tensor, backbone: features, pyramid: pyramid,
            head: ["class_logits": [logits], "box_regression": [deltas]], proposals: rois)
        let results = timings.measure(.postprocess) {
            (0..<images).map { image in
                postprocess(
                    logits: logits, deltas: deltas, rois: rois, owners: roiOwners, image: image,
                    levels: Tensor.roiLevels(
                        boxes: rois, scales: roiScales(pyramid, imageSizes: batch.imageSizes)),
                    inputSize: batch.imageSizes[image], originalSize: batch.originalSizes[image])
            }
        }
        return (trace, results)
    }

    /// The RPN's proposals for one image, best first (torchvision's `filter_proposals`).
    func proposalsFor(image: Int, _ outputs: [(Tensor, Tensor)], inputSize: ImageSize, paddedSize: (Int, Int)) -> [[Float]] {
        var boxes: [Float] = [], objectness: [Float] = [], levels: [Int] = []
        for (level, (scoreMap, deltaMap)) in outputs.enumerated() {
            let height = scoreMap.shape[2], width = scoreMap.shape[3], cells = height * width
            let perCell = anchors.anchorsPerLocation(level: level)
            let scores = scoreMap.scalars, deltas = deltaMap.scalars
            let scoreBase = image * perCell * cells, deltaBase = image * perCell * 4 * cells
            // Order (cell, anchor), as torchvision's concat_box_prediction_layers.
            var levelScores: [Float] = []
            levelScores.reserveCapacity(cells * perCell)
            for cell in 0..<cells { for a in 0..<perCell { levelScores.append(scores[scoreBase + a * cells + cell]) } }
            let chosen = topK(Array(0..<levelScores.count), scores: levelScores, k: min(proposals.preNMSTopN, levelScores.count))
            let levelAnchors = anchors.anchors(
                level: level, gridHeight: height, gridWidth: width, imageHeight: paddedSize.0, imageWidth: paddedSize.1)
            for index in chosen {
                let cell = index / perCell, a = index % perCell
                let codes = (0..<4).map { deltas[deltaBase + (a * 4 + $0) * cells + cell] }
                let decoded = codes.withUnsafeBufferPointer { c in
                    levelAnchors.withUnsafeBufferPointer { p in rpnCoder.decode(c.baseAddress!, references: p.baseAddress! + 4 * index) }
                }
                boxes += [decoded.0, decoded.1, decoded.2, decoded.3]
                objectness.append(levelScores[index])
                levels.append(level)
            }
        }
        BoxOps.clip(&boxes, height: inputSize.height, width: inputSize.width)
        let probabilities = objectness.map(sigmoid)
        let large = BoxOps.nonSmall(boxes, minSize: proposals.minSize).filter { probabilities[$0] >= proposals.scoreThreshold }
        let kept = BoxOps.batchedNMS(
            large.flatMap { Array(boxes[(4 * $0)..<(4 * $0 + 4)]) }, scores: large.map { probabilities[$0] },
            categories: large.map { levels[$0] }, threshold: proposals.nmsThreshold)
        return kept.prefix(proposals.postNMSTopN).map { Array(boxes[(4 * large[$0])..<(4 * large[$0] + 4)]) }
    }

    func postprocess(
        logits: Tensor, deltas: Tensor, rois: Tensor, owners: [Int], image: Int, levels: [Int],
        inputSize: ImageSize, originalSize: ImageSize
    ) -> ImageDetections {
        let probabilities = logits.softmax(alongAxis: -1).scalars, delta = deltas.scalars, boxes = rois.scalars
        let classes = classCount
        var candidates: [Candidate] = []
        for (roi, owner) in owners.enumerated() where owner == image {
            for k in 1..<classes {
                let score = probabilities[roi * classes + k]
                var box = delta.withUnsafeBufferPointer { d in
                    boxes.withUnsafeBufferPointer { b in
                        let (x1, y1, x2, y2) = boxCoder.decode(
                            d.baseAddress! + (roi * classes + k) * 4, references: b.baseAddress! + roi * 5 + 1)
                        return [x1, y1, x2, y2]
                    }
                }
                BoxOps.clip(&box, height: inputSize.height, width: inputSize.width)
                guard score > boxHead.scoreThreshold, box[2] - box[0] >= 1e-2, box[3] - box[1] >= 1e-2 else { continue }
                candidates.append(Candidate(box: Box(box), score: score, label: k, level: levels[roi], row: roi, column: 0, anchor: 0))
            }
        }
        return suppressed(
            candidates, nmsThreshold: boxHead.nmsThreshold, limit: boxHead.detectionsPerImage, inputSize: inputSize,
            originalSize: originalSize)
    }
}
