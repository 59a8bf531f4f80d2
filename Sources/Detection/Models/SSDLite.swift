public import Engine
public import NN
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// SSDLite with a MobileNetV2 backbone as TensorFlow's Object Detection API builds it (`ssdlite_mobilenet_v2`):
/// images resized to 300x300 (TensorFlow 1's bilinear) and scaled to [-1, 1]; two backbone maps and four extra
/// layers (1x1, 3x3 depthwise stride 2, 1x1, each with ReLU6); per map a box and a class predictor (3x3 depthwise with
/// ReLU6, then a 1x1 convolution); `SSDAnchors`; TensorFlow's `FasterRcnnBoxCoder` (scales 10, 10, 5, 5, no clamp);
/// sigmoid scores, label 0 the background; per-class NMS over the unclipped boxes, then the kept boxes clipped to the
/// image. Batch norms are folded into the convolutions by the converter (Tools/convert_ssdlite.py).
public final class SSDLite: Detector {
    /// An extra feature layer: 1x1 to `reduced` channels, 3x3 depthwise stride 2, 1x1 to `out` channels.
    public final class Extra: UnaryModule {
        public let reduce: SameConv, depthwise: SameConv, expand: SameConv

        init(_ inChannels: Int, reduced: Int, _ outChannels: Int, random: inout RandomNumbers) {
            reduce = SameConv(inChannels, reduced, kernel: 1, relu6: true, random: &random)
            depthwise = SameConv(reduced, reduced, kernel: 3, stride: 2, depthwise: true, relu6: true, random: &random)
            expand = SameConv(reduced, outChannels, kernel: 1, relu6: true, random: &random)
        }

        public var namedParameters: [(name: String, parameter: Parameter)] {
            Self.prefixed("reduce", reduce) + Self.prefixed("depthwise", depthwise) + Self.prefixed("expand", expand)
        }

        public func callAsFunction(_ x: Tensor) -> Tensor { expand(depthwise(reduce(x))) }
    }

    /// The box and class predictors of one feature map.
    public final class Head: Module {
        public let boxDepthwise: SameConv, box: SameConv, classDepthwise: SameConv, classLogits: SameConv

        init(_ channels: Int, anchors: Int, classCount: Int, random: inout RandomNumbers) {
            boxDepthwise = SameConv(channels, channels, kernel: 3, depthwise: true, relu6: true, random: &random)
            box = SameConv(channels, anchors * 4, kernel: 1, relu6: false, random: &random)
            classDepthwise = SameConv(channels, channels, kernel: 3, depthwise: true, relu6: true, random: &random)
            classLogits = SameConv(channels, anchors * classCount, kernel: 1, relu6: false, random: &random)
        }

        public var namedParameters: [(name: String, parameter: Parameter)] {
            Self.prefixed("box_depthwise", boxDepthwise) + Self.prefixed("box", box) + Self.prefixed("class_depthwise", classDepthwise)
                + Self.prefixed("class", classLogits)
        }
    }

    public let backbone: MobileNetV2
    public let extras: [Extra]
    public let heads: [Head]
    public let classCount: Int
    public var transform: DetectionTransform
    /// scoreThreshold: the candidates' score floor (TensorFlow's graph: 1e-8); topKCandidates: detections per class.
    public var thresholds: OneStageThresholds
    public let anchors = SSDAnchors()
    /// TensorFlow's `FasterRcnnBoxCoder` scales of (ty, tx, th, tw).
    public let coderScales: [Float] = [10, 10, 5, 5]

    public init(
        classCount: Int = 2, size: Int = 300,
        thresholds: OneStageThresholds = OneStageThresholds(
            scoreThreshold: 0.5, nmsThreshold: 0.6, detectionsPerImage: 100, topKCandidates: 100),
        seed: UInt64 = 0
    ) {
        var random = RandomNumbers(seed: seed)
        backbone = MobileNetV2(random: &random)
        let extraShapes = [(1280, 256, 512), (512, 128, 256), (256, 128, 256), (256, 64, 128)]
        extras = extraShapes.map { Extra($0.0, reduced: $0.1, $0.2, random: &random) }
        let channels = [576, 1280] + extraShapes.map(\.2)
        let anchors = SSDAnchors()
        heads = channels.enumerated().map {
            Head($0.element, anchors: anchors.anchorsPerLocation(layer: $0.offset), classCount: classCount, random: &random)
        }
        self.classCount = classCount
        var transform = DetectionTransform(
            minSize: size, maxSize: size, mean: [0.5, 0.5, 0.5], standardDeviation: [0.5, 0.5, 0.5], sizeDivisible: 1)
        transform.fixedSize = ImageSize(height: size, width: size)
        self.transform = transform
        self.thresholds = thresholds
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        Self.prefixed("backbone", backbone) + extras.enumerated().flatMap { Self.prefixed("extras.\($0.offset)", $0.element) }
            + heads.enumerated().flatMap { Self.prefixed("heads.\($0.offset)", $0.element) }
    }

    /// The six maps the predictors read: the backbone's two and the extra layers'.
    public func featureMaps(_ input: Tensor) -> [Tensor] {
        var maps = backbone(input)
        for extra in extras { maps.append(extra(maps[maps.count - 1])) }
        return maps
    }

    /// The feature maps up to `level`, computed from the first one (so that gradients reach that 19x19 map).
    public func featureMaps(through level: Int, fromFirst first: Tensor) -> [Tensor] {
        var maps = [first]
        if level > 0 { maps.append(backbone.secondFeature(fromFirst: first)) }
        for extra in extras.prefix(max(level - 1, 0)) { maps.append(extra(maps[maps.count - 1])) }
        return maps
    }

    public func head(_ level: Int, _ map: Tensor) -> (logits: Tensor, codes: Tensor) {
        let head = heads[level]
        return (head.classLogits(head.classDepthwise(map)), head.box(head.boxDepthwise(map)))
    }

    public func forward(_ batch: DetectionTransform.Batch, keeping extras: ForwardTrace.Extra, timings: inout StageTimings) -> (
        trace: ForwardTrace, results: [ImageDetections]
    ) {
        let maps = timings.measure(.backbone) { featureMaps(batch.tensor) }
        let outputs = timings.measure(.head) { maps.enumerated().map { head($0.offset, $0.element) } }
        let trace = ForwardTrace(
            input: batch.tensor, backbone: Array(maps.prefix(2)), pyramid: maps,
            head: ["cls_logits": outputs.map(\.logits), "bbox_regression": outputs.map(\.codes)])
        let results = timings.measure(.postprocess) {
            (0..<batch.tensor.shape[0]).map { image in
                postprocess(outputs, image: image, inputSize: batch.imageSizes[image], originalSize: batch.originalSizes[image])
            }
        }
        return (trace, results)
    }

    /// The box of anchor (y, x, h, w) for codes (ty, tx, th, tw), as (x1, y1, x2, y2) in input pixels.
    public func decode(_ codes: [Float], anchor: ArraySlice<Float>, inputSize: ImageSize) -> [Float] {
        let a = Array(anchor)
        let ty = codes[0] / coderScales[0], tx = codes[1] / coderScales[1]
        let th = codes[2] / coderScales[2], tw = codes[3] / coderScales[3]
        let height = expf(th) * a[2], width = expf(tw) * a[3]
        let centerY = ty * a[2] + a[0], centerX = tx * a[3] + a[1]
        let (ymin, xmin) = (centerY - height / 2, centerX - width / 2)
        let (ymax, xmax) = (centerY + height / 2, centerX + width / 2)
        let (h, w) = (Float(inputSize.height), Float(inputSize.width))
        return [xmin * w, ymin * h, xmax * w, ymax * h]
    }

    func postprocess(_ outputs: [(logits: Tensor, codes: Tensor)], image: Int, inputSize: ImageSize, originalSize: ImageSize)
        -> ImageDetections
    {
        var candidates: [Candidate] = []
        for (level, output) in outputs.enumerated() {
            let height = output.logits.shape[2], width = output.logits.shape[3], cells = height * width
            let perCell = anchors.anchorsPerLocation(layer: level), classes = classCount
            let logits = output.logits.scalars, codes = output.codes.scalars
            let logitBase = image * perCell * classes * cells, codeBase = image * perCell * 4 * cells
            let levelAnchors = anchors.anchors(layer: level, gridHeight: height, gridWidth: width)
            for cell in 0..<cells {
                for a in 0..<perCell {
                    // Label 0 is the background; TensorFlow's graph drops its column after the sigmoid.
                    for label in 1..<classes {
                        let score = 1 / (1 + expf(-logits[logitBase + (a * classes + label) * cells + cell]))
                        guard score > thresholds.scoreThreshold else { continue }
                        let anchorIndex = cell * perCell + a
                        let box = decode(
                            (0..<4).map { codes[codeBase + (a * 4 + $0) * cells + cell] },
                            anchor: levelAnchors[(4 * anchorIndex)..<(4 * anchorIndex + 4)], inputSize: inputSize)
                        candidates.append(
                            Candidate(
                                box: Box(box), score: score, label: label, level: level, row: cell / width, column: cell % width, anchor: a)
                        )
                    }
                }
            }
        }
        // NMS over the unclipped boxes as the graph's post-processor: at most topKCandidates per class, then
        // detectionsPerImage in all, best first; then the kept boxes clipped to the image.
        var result = suppressed(
            candidates, nmsThreshold: thresholds.nmsThreshold, limit: Int.max, inputSize: inputSize, originalSize: originalSize)
        var perClass: [Int: Int] = [:]
        let chosen = result.detections.indices.filter { index in
            perClass[result.detections[index].label, default: 0] += 1
            return perClass[result.detections[index].label]! <= thresholds.topKCandidates
        }.prefix(thresholds.detectionsPerImage)
        result.kept = chosen.map { result.kept[$0] }
        result.detections = chosen.map { result.detections[$0] }
        for index in result.detections.indices {
            var box = Array(result.detections[index].box)
            BoxOps.clip(&box, height: originalSize.height, width: originalSize.width)
            result.detections[index].box = Box(box)
        }
        return result
    }
}
