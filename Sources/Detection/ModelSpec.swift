import Foundation
import NN
import Vision
import WeightsIO

/// What network to build: a torchvision builder name with options, or a JSON file with the same fields.
///
/// ```json
/// {"architecture": "fcos", "backbone": "resnet18", "baseWidth": 16, "fpnChannels": 64, "classCount": 5,
///  "minSize": 320, "maxSize": 512, "scoreThreshold": 0.05}
/// ```
public struct ModelSpec: Sendable, Codable, Equatable {
    public enum Architecture: String, Sendable, Codable, CaseIterable { case fcos, retinanet, fasterrcnn, ssdlite }

    public var architecture: Architecture
    public var backbone: String = "resnet50"
    public var baseWidth: Int = 64
    public var fpnChannels: Int = 256
    /// Nil: taken from the weights file.
    public var classCount: Int?
    public var representationSize: Int = 1024
    public var minSize: Int = 800
    public var maxSize: Int = 1333
    public var scoreThreshold: Float?
    public var nmsThreshold: Float?
    public var detectionsPerImage: Int?
    public var topKCandidates: Int?
    public var normalization: NormalizationKind = .frozen
    /// torchvision's model version: 1, or 2 for the `_v2` builders (RetinaNet: P6 from C5 and GroupNorm heads; Faster
    /// R-CNN: batch-norm FPN, two RPN convolutions, a conv box head).
    public var version: Int = 1
    /// The name of each label, indexed by label (index 0 is the background of torchvision's heads); nil: COCO's for a
    /// 91-class head, else "label N" (see ``ClassNames``).
    public var classNames: [String]?

    public init(architecture: Architecture) { self.architecture = architecture }

    enum CodingKeys: String, CodingKey {
        case architecture, backbone, baseWidth, fpnChannels, classCount, representationSize, minSize, maxSize
        case scoreThreshold, nmsThreshold, detectionsPerImage, topKCandidates, normalization, version, classNames
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try c.decode(Architecture.self, forKey: .architecture)
        backbone = try c.decodeIfPresent(String.self, forKey: .backbone) ?? "resnet50"
        baseWidth = try c.decodeIfPresent(Int.self, forKey: .baseWidth) ?? 64
        fpnChannels = try c.decodeIfPresent(Int.self, forKey: .fpnChannels) ?? 256
        classCount = try c.decodeIfPresent(Int.self, forKey: .classCount)
        representationSize = try c.decodeIfPresent(Int.self, forKey: .representationSize) ?? 1024
        minSize = try c.decodeIfPresent(Int.self, forKey: .minSize) ?? 800
        maxSize = try c.decodeIfPresent(Int.self, forKey: .maxSize) ?? 1333
        scoreThreshold = try c.decodeIfPresent(Float.self, forKey: .scoreThreshold)
        nmsThreshold = try c.decodeIfPresent(Float.self, forKey: .nmsThreshold)
        detectionsPerImage = try c.decodeIfPresent(Int.self, forKey: .detectionsPerImage)
        topKCandidates = try c.decodeIfPresent(Int.self, forKey: .topKCandidates)
        normalization = try c.decodeIfPresent(NormalizationKind.self, forKey: .normalization) ?? .frozen
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
        classNames = try c.decodeIfPresent([String].self, forKey: .classNames)
    }

    /// A torchvision builder name: `fcos_resnet50_fpn`, `retinanet_resnet50_fpn`, `fasterrcnn_resnet50_fpn`, the same
    /// with another ResNet depth (`fcos_resnet18_fpn`), or `retinanet_resnet50_fpn_v2` / `fasterrcnn_resnet50_fpn_v2`.
    public init(builderName name: String) throws {
        var parts = name.split(separator: "_").map(String.init)
        let version = parts.count == 4 && parts[3] == "v2" && ["retinanet", "fasterrcnn"].contains(parts[0]) ? 2 : 1
        if version == 2 { parts.removeLast() }
        guard parts.count == 3, parts[2] == "fpn", let architecture = Architecture(rawValue: parts[0]),
            ResNet.Depth(rawValue: Int(parts[1].dropFirst("resnet".count)) ?? 0) != nil, parts[1].hasPrefix("resnet")
        else {
            throw ModelError(
                "unknown model '\(name)'; expected fcos|retinanet|fasterrcnn + _resnet18|34|50|101 + _fpn, retinanet_resnet50_fpn_v2, fasterrcnn_resnet50_fpn_v2, or a JSON model spec file"
            )
        }
        self.init(architecture: architecture)
        backbone = parts[1]
        self.version = version
    }

    /// A builder name, or the path of a JSON spec file.
    public static func resolve(_ nameOrPath: String) throws -> ModelSpec {
        if nameOrPath.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: nameOrPath) else {
                throw ModelError("\(nameOrPath): cannot read the model spec")
            }
            do {
                return try JSONDecoder().decode(ModelSpec.self, from: data)
            } catch {
                throw ModelError("\(nameOrPath): not a valid model spec: \(error)")
            }
        }
        return try ModelSpec(builderName: nameOrPath)
    }

    var depth: ResNet.Depth { ResNet.Depth(rawValue: Int(backbone.dropFirst("resnet".count)) ?? 50) ?? .resnet50 }

    /// Sets the input size from a command's `--min-size` and `--max-size`, the short and long side's limits.
    /// SSDLite's input is fixed: TensorFlow's graph resizes every image to its square, and its anchors are fractions of
    /// that square, so at another size the features no longer match the anchors (at 448 or 600 pixels the converted
    /// person detector's boxes drift off the people); a size other than the spec's is refused.
    public mutating func resize(minSize: Int?, maxSize: Int?) throws {
        if architecture == .ssdlite {
            for side in [minSize, maxSize].compactMap({ $0 }) where side != self.minSize {
                throw ModelError(
                    "ssdlite runs at its fixed \(self.minSize)x\(self.minSize) input (its graph resizes every image to it); an input side of \(side) is not supported"
                )
            }
            return
        }
        if let minSize { self.minSize = minSize }
        if let maxSize { self.maxSize = maxSize }
    }

    /// Builds the network with freshly initialized weights.
    public func build(classCount: Int) throws -> any Detector {
        if architecture == .ssdlite { return try ssdLite(classCount: classCount) }
        guard ResNet.Depth(rawValue: Int(backbone.dropFirst("resnet".count)) ?? 0) != nil, backbone.hasPrefix("resnet") else {
            throw ModelError("unknown backbone '\(backbone)'; expected resnet18, resnet34, resnet50 or resnet101")
        }
        guard minSize >= 1, maxSize >= 1 else {
            throw ModelError("minSize \(minSize) and maxSize \(maxSize) must both be at least 1 pixel")
        }
        if let scoreThreshold, !(0...1).contains(scoreThreshold) {
            throw ModelError("scoreThreshold \(scoreThreshold) is not a probability in [0, 1]")
        }
        if let nmsThreshold, !(0...1).contains(nmsThreshold) {
            throw ModelError("nmsThreshold \(nmsThreshold) is not an IoU in [0, 1]")
        }
        guard baseWidth >= 1, fpnChannels >= 1 else {
            throw ModelError("baseWidth \(baseWidth) and fpnChannels \(fpnChannels) must both be at least 1")
        }
        // FCOS's heads and RetinaNet v2's normalize 32 groups of the FPN's channels.
        if architecture == .fcos || (architecture == .retinanet && version == 2), !fpnChannels.isMultiple(of: 32) {
            throw ModelError(
                "fpnChannels \(fpnChannels) is not a multiple of 32, the GroupNorm groups of \(architecture.rawValue)'s heads")
        }
        let transform = DetectionTransform(minSize: minSize, maxSize: maxSize)
        switch architecture {
        case .fcos:
            var thresholds = OneStageThresholds(scoreThreshold: 0.2, nmsThreshold: 0.6, detectionsPerImage: 100, topKCandidates: 1000)
            apply(to: &thresholds)
            return FCOS(
                depth: depth, baseWidth: baseWidth, fpnChannels: fpnChannels, classCount: classCount, transform: transform,
                thresholds: thresholds, normalization: normalization)
        case .retinanet:
            var thresholds = OneStageThresholds(scoreThreshold: 0.05, nmsThreshold: 0.5, detectionsPerImage: 300, topKCandidates: 1000)
            apply(to: &thresholds)
            return RetinaNet(
                depth: depth, baseWidth: baseWidth, fpnChannels: fpnChannels, classCount: classCount, transform: transform,
                thresholds: thresholds, normalization: normalization, version: version)
        case .fasterrcnn:
            var boxHead = BoxHeadSettings()
            if let scoreThreshold { boxHead.scoreThreshold = scoreThreshold }
            if let nmsThreshold { boxHead.nmsThreshold = nmsThreshold }
            if let detectionsPerImage { boxHead.detectionsPerImage = detectionsPerImage }
            return FasterRCNN(
                depth: depth, baseWidth: baseWidth, fpnChannels: fpnChannels, representationSize: representationSize,
                classCount: classCount, transform: transform, boxHead: boxHead, normalization: normalization, version: version)
        case .ssdlite:
            return try ssdLite(classCount: classCount)
        }
    }

    /// TensorFlow's SSDLite + MobileNetV2 (the converted person detector): a square input of minSize pixels.
    private func ssdLite(classCount: Int) throws -> any Detector {
        guard backbone == "mobilenet_v2" else { throw ModelError("ssdlite: unknown backbone '\(backbone)'; expected mobilenet_v2") }
        guard minSize == maxSize else {
            throw ModelError("ssdlite's input is square: minSize \(minSize) and maxSize \(maxSize) must be equal")
        }
        guard minSize >= 32 else { throw ModelError("ssdlite's input side \(minSize) must be at least 32 pixels") }
        var thresholds = OneStageThresholds(scoreThreshold: 0.5, nmsThreshold: 0.6, detectionsPerImage: 100, topKCandidates: 100)
        apply(to: &thresholds)
        return SSDLite(classCount: classCount, size: minSize, thresholds: thresholds)
    }

    private func apply(to thresholds: inout OneStageThresholds) {
        if let scoreThreshold { thresholds.scoreThreshold = scoreThreshold }
        if let nmsThreshold { thresholds.nmsThreshold = nmsThreshold }
        if let detectionsPerImage { thresholds.detectionsPerImage = detectionsPerImage }
        if let topKCandidates { thresholds.topKCandidates = topKCandidates }
    }

    /// The class count a checkpoint's classifier implies.
    func classCount(in tensors: [String: StoredTensor]) -> Int? {
        switch architecture {
        case .fcos: tensors["head.classification_head.cls_logits.weight"]?.shape.first
        case .retinanet: tensors["head.classification_head.cls_logits.weight"]?.shape.first.map { $0 / 9 }
        case .fasterrcnn: tensors["roi_heads.box_predictor.cls_score.weight"]?.shape.first
        case .ssdlite: tensors["heads.0.class.bias"]?.shape.first.map { $0 / SSDAnchors().anchorsPerLocation(layer: 0) }
        }
    }

    /// Builds the network and loads a `.pth` or `.safetensors` checkpoint by its state-dict keys.
    public func load(weights path: String) throws -> any Detector {
        let tensors = try WeightsFile.read(contentsOf: path)
        guard let classes = classCount ?? classCount(in: tensors) else {
            throw ModelError("\(path): no classifier weights for a \(architecture.rawValue) model (is it the right checkpoint?)")
        }
        _ = try ClassNames(spec: self, classCount: classes)
        let detector = try build(classCount: classes)
        do {
            try detector.load(tensors, strict: true, shape: \.shape, convert: { $0.floatTensor() })
        } catch let mismatch as StateDictMismatch {
            throw ModelError("\(path): \(mismatch)")
        }
        return detector
    }
}

/// A model that cannot be built or loaded, with the reason.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
