public import Engine
public import NN
import Synchronization
public import Vision

/// One prediction before the final NMS: what Odam-NMS and the explanations start from.
public struct Candidate: Sendable, Codable, Equatable {
    /// (x1, y1, x2, y2) in the resized input image's pixels.
    public var box: Box<Float>
    public var score: Float
    /// The class index as the checkpoint numbers it (background is 0 for Faster R-CNN and torchvision's COCO heads).
    public var label: Int
    /// The FPN level (0 = finest) that made the prediction.
    public var level: Int
    /// One-stage detectors: the cell (row, column) and anchor index on that level; two-stage: the proposal index in `row`.
    public var row: Int
    public var column: Int
    public var anchor: Int

    public init(box: Box<Float>, score: Float, label: Int, level: Int, row: Int, column: Int, anchor: Int) {
        self.box = box
        self.score = score
        self.label = label
        self.level = level
        self.row = row
        self.column = column
        self.anchor = anchor
    }
}

/// A final detection in the original image's pixels.
public struct Detection: Sendable, Codable, Equatable {
    /// (x1, y1, x2, y2) in the original image's pixels.
    public var box: Box<Float>
    public var score: Float
    public var label: Int
    /// Index into the image's candidates.
    public var candidate: Int

    public init(box: Box<Float>, score: Float, label: Int, candidate: Int) {
        self.box = box
        self.score = score
        self.label = label
        self.candidate = candidate
    }
}

/// What a detector made of one image.
public struct ImageDetections: Sendable {
    public var candidates: [Candidate]
    /// Indices into `candidates` kept by the detector's own NMS, best first.
    public var kept: [Int]
    public var detections: [Detection]
    /// (height, width) of the resized image the network saw, before padding.
    public var inputSize: ImageSize
    public var originalSize: ImageSize
}

/// The tensors of a forward pass that explanations reach into.
public struct ForwardTrace: Sendable {
    /// What a forward pass keeps beyond the tensors every trace has (the caller asks; the model holds no such mode).
    public struct Extra: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// FCOS: the towers' ReLU outputs and GroupNorm scales, for the reversed head (the approximate map path).
        public static let towerLayers = Extra(rawValue: 1)
    }

    public var input: Tensor
    /// Backbone outputs (C levels) and FPN levels, finest first.
    public var backbone: [Tensor]
    public var pyramid: [Tensor]
    /// Raw head outputs by name, one tensor per level for one-stage heads (for example `cls_logits`, `bbox_regression`,
    /// `bbox_ctrness` for FCOS), or per RoI for two-stage heads.
    public var head: [String: [Tensor]]
    /// Two-stage detectors: the proposals as [K, 5] (image, x1, y1, x2, y2).
    public var proposals: Tensor?
    /// FCOS asked to keep ``ForwardTrace/Extra/towerLayers``: per level, the classification and regression tower layers.
    public var towerLayers: [(classification: [TowerLayer], regression: [TowerLayer])] = []
    /// Graphs the explainers record from this trace (a head run again with gradient recording), kept with it so that
    /// the maps of one image (Odam-NMS's candidates, the kept detections, and their checks) share one recording.
    public private(set) var recordings = Recordings()

    /// This trace with nothing recorded from it yet, for timing an explainer from the start.
    public func withoutRecordings() -> ForwardTrace {
        var copy = self
        copy.recordings = Recordings()
        return copy
    }

    public init(input: Tensor, backbone: [Tensor], pyramid: [Tensor], head: [String: [Tensor]], proposals: Tensor? = nil) {
        self.input = input
        self.backbone = backbone
        self.pyramid = pyramid
        self.head = head
        self.proposals = proposals
    }
}

/// An object detector with torchvision's pre- and post-processing.
public protocol Detector: Module {
    var transform: DetectionTransform { get }
    var classCount: Int { get }
    /// Runs the network on a prepared batch, keeping `extras` in the trace where the model has them.
    func forward(_ batch: DetectionTransform.Batch, keeping extras: ForwardTrace.Extra, timings: inout StageTimings) -> (
        trace: ForwardTrace, results: [ImageDetections]
    )
}

extension Detector {
    /// Runs the network on a prepared batch, keeping nothing beyond the plain trace.
    public func forward(_ batch: DetectionTransform.Batch, timings: inout StageTimings) -> (trace: ForwardTrace, results: [ImageDetections])
    {
        forward(batch, keeping: [], timings: &timings)
    }
    /// Detects objects in images (RGB tensors [3, H, W] with values in [0, 1]), without recording gradients.
    public func detect(_ images: [Tensor], timings: inout StageTimings) -> [ImageDetections] {
        withoutGradients {
            let batch = timings.measure(.transform) { transform.batch(images) }
            return forward(batch, timings: &timings).results
        }
    }

    /// The detector's own class-wise NMS over `candidates`, the best `limit` kept, as final detections.
    func suppressed(
        _ candidates: [Candidate], nmsThreshold: Float, limit: Int, inputSize: ImageSize,
        originalSize: ImageSize
    ) -> ImageDetections {
        ImageDetections(candidates: candidates, kept: [], inputSize: inputSize, originalSize: originalSize)
            .suppressed(by: .nms(iouThreshold: nmsThreshold), limit: limit)
    }
}

extension ImageDetections {
    /// Final detections of the `kept` candidates in original pixels, with their candidate scores or `keptScores`
    /// (Soft-NMS decays them).
    public init(
        candidates: [Candidate], kept: [Int], keptScores: [Float]? = nil, inputSize: ImageSize,
        originalSize: ImageSize
    ) {
        let detections = kept.enumerated().map { position, index in
            let candidate = candidates[index]
            return Detection(
                box: DetectionTransform.boxToOriginal(candidate.box, resized: inputSize, original: originalSize),
                score: keptScores?[position] ?? candidate.score, label: candidate.label, candidate: index)
        }
        self.init(candidates: candidates, kept: kept, detections: detections, inputSize: inputSize, originalSize: originalSize)
    }
}

/// Post-processing thresholds of one-stage detectors (torchvision's names and defaults differ per model).
public struct OneStageThresholds: Sendable, Codable, Equatable {
    public var scoreThreshold: Float
    public var nmsThreshold: Float
    public var detectionsPerImage: Int
    public var topKCandidates: Int

    public init(scoreThreshold: Float, nmsThreshold: Float, detectionsPerImage: Int, topKCandidates: Int) {
        self.scoreThreshold = scoreThreshold
        self.nmsThreshold = nmsThreshold
        self.detectionsPerImage = detectionsPerImage
        self.topKCandidates = topKCandidates
    }
}

/// Positions of the `k` highest scores, in descending order (lower position first at ties).
func topK(_ indices: [Int], scores: [Float], k: Int) -> [Int] {
    guard k > 0 else { return [] }
    var selected = Array(scores.indices)
    if k < scores.count {
        // The k-th largest score bounds the selection; only those at or above it are sorted.
        let cut = scores.sorted(by: >)[k - 1]
        selected = selected.filter { scores[$0] >= cut }
    }
    selected.sort { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
    return Array(selected.prefix(k))
}

/// A detector's output that is not a number: degenerate weights (NaN or infinite parameters) or geometry.
public struct NonFiniteDetectionError: Error, CustomStringConvertible, Sendable {
    public var box: Box<Float>
    public var score: Float

    public var description: String {
        "the detector produced a non-finite detection (box \(Array(box)), score \(score)); its weights hold NaN or infinity, or the image is degenerate"
    }
}

extension ImageDetections {
    /// Throws when a candidate's box or score is NaN or infinite, so that no such number reaches JSON, SQL or Odam-NMS.
    public func checkFinite() throws(NonFiniteDetectionError) {
        for candidate in candidates where !candidate.score.isFinite || !candidate.box.allSatisfy(\.isFinite) {
            throw NonFiniteDetectionError(box: candidate.box, score: candidate.score)
        }
        for detection in detections where !detection.score.isFinite || !detection.box.allSatisfy(\.isFinite) {
            throw NonFiniteDetectionError(box: detection.box, score: detection.score)
        }
    }
}

/// Values derived from one forward pass and kept with its trace, by key (see ``ForwardTrace/recordings``).
public final class Recordings: Sendable {
    private let values = Mutex<[String: any Sendable]>([:])

    public init() {}

    /// The value stored under `key`, made by `make` and stored the first time; `make` runs outside the lock, so it
    /// may ask for other keys.
    public func value<Value: Sendable>(_ key: String, make: () -> Value) -> Value {
        if let stored: Value = stored(key) { return stored }
        let made = make()
        store(made, as: key)
        return made
    }

    /// The value stored under `key`, if one of this type is.
    public func stored<Value: Sendable>(_ key: String) -> Value? { values.withLock { $0[key] } as? Value }

    /// Stores `value` under `key`, replacing what was there.
    public func store<Value: Sendable>(_ value: Value, as key: String) { values.withLock { $0[key] = value } }
}
