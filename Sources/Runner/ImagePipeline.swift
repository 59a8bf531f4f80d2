import Detection
import Engine
import Explain
import Foundation
import Vision
import WeightsIO

/// One image through the worker's steps: detect, class-logit maps of every candidate, Odam-NMS, then the kept
/// detections' class and edge maps and their combination, their explanation statistics, and one maps file. Every map
/// comes from ``DetectorMaps``: exact by default, each FPN level checked against plain autograd on the same image.
public struct ImagePipeline {
    public let detector: any Detector
    public let mapMaker: DetectorMaps
    public var odamNMS: OdamNMS
    /// Targets of the final maps; `combined` (their pixel-wise maximum) is always added.
    public var targets: [ExplanationTarget]
    public var detectionsPerImage: Int
    /// Kept detections scoring at or below this get no final maps and no row (Odam-NMS itself sees every candidate).
    public var scoreThreshold: Float
    /// Whether kept detections come from Odam-NMS (else plain NMS at the same IoU threshold).
    public var usesOdamNMS = true
    /// Whether to encode a color overlay PNG of each kept detection's combined map.
    public var makesOverlays = false
    /// The names the detections JSON and the overlays' captions give the labels.
    public var classNames = ClassNames(names: [])

    /// The pipeline a job spec asks for; throws when its map path does not serve the detector.
    public init(detector: any Detector, spec: JobSpec) throws {
        let defaults = OdamNMS.defaults(for: detector)
        try self.init(
            detector: detector, path: spec.odam.path,
            odamNMS: OdamNMS(
                iouThreshold: spec.nms.iou ?? defaults.iouThreshold, lowCorrelation: spec.nms.low ?? defaults.lowCorrelation,
                highCorrelation: spec.nms.high ?? defaults.highCorrelation, maximumDetections: defaults.maximumDetections),
            targets: spec.odam.targets, detectionsPerImage: spec.nms.maxDetections,
            scoreThreshold: spec.nms.scoreThreshold)
        usesOdamNMS = spec.nms.method == .odam
        makesOverlays = spec.output.upload.overlays
    }

    public init(
        detector: any Detector, path: MapPath = .auto, odamNMS: OdamNMS? = nil,
        targets: [ExplanationTarget] = [.score, .x1, .y1, .x2, .y2],
        detectionsPerImage: Int = 100, scoreThreshold: Float = 0.3
    ) throws {
        self.detector = detector
        self.mapMaker = try DetectorMaps(detector: detector, path: path)
        self.odamNMS = odamNMS ?? .defaults(for: detector)
        self.targets = targets
        self.detectionsPerImage = detectionsPerImage
        self.scoreThreshold = scoreThreshold
    }

    /// A kept detection with its explanation statistics.
    public struct Record: Sendable {
        public var box: Box<Float>
        public var score: Float
        public var label: Int
        /// The label's name, when the model names its classes.
        public var labelName: String?
        /// The share of the combined map's energy inside the box, whether its peak is inside, and its compactness.
        public var energyInBox: Double
        public var peakInBox: Bool
        public var compactness: Double
        /// The highest correlation of its class-logit map with another kept detection's (0 when alone; nil when
        /// the job uses plain NMS and no candidate maps were made).
        public var maxCorrelation: Float?
    }

    public struct Output: Sendable {
        public var records: [Record]
        public var candidates: Int
        /// What plain NMS at the same IoU threshold would have kept.
        public var keptByNMS: Int
        /// The ``MapsFile``'s bytes: per detection and target the raw map on its feature grid, cropped, in float16;
        /// the statistics are computed on the float32 maps at the image's resolution.
        public var mapsFile: [UInt8]
        /// A color overlay PNG of each kept detection's combined map (when asked for).
        public var overlays: [[UInt8]]
        /// The detections as JSON: width, height and per detection its rank, box, score, label and statistics.
        public var detectionsJSON: [UInt8]
        /// Milliseconds of the forward pass, the candidate maps, Odam-NMS, the final maps and the encoding.
        public var timings: StepTimings
        /// How each level's maps agreed with plain autograd on this image: Odam-NMS's candidate maps and the kept
        /// detections' maps.
        public var candidateAgreement: [VerifiedExplainer.LevelAgreement]
        public var finalAgreement: [VerifiedExplainer.LevelAgreement]
    }

    public func process(_ image: RGBImage) throws -> Output {
        var timings = StepTimings()
        func timed<R>(_ step: WritableKeyPath<StepTimings, Double?>, _ body: () throws -> R) rethrows -> R {
            let (result, milliseconds) = try Stopwatch.time(body)
            timings[keyPath: step] = milliseconds
            return result
        }
        let pass = try CandidatePass(
            image: image, detector: detector, mapMaker: mapMaker, makesCandidateMaps: usesOdamNMS, scoreThreshold: scoreThreshold)
        Failpoint.hit("inference")
        timings.forward = pass.forwardMilliseconds
        timings.candidateMaps = pass.candidateMapsMilliseconds
        let (trace, result, eligible, scored) = (pass.trace, pass.result, pass.eligible, pass.scored)
        let maps = pass.maps ?? CandidateMaps(gridHeight: 1, gridWidth: 1)
        let candidateAgreement = pass.agreement
        let plain = scored.suppressed(by: .nms(iouThreshold: odamNMS.iouThreshold), limit: detectionsPerImage)
        var kept = timed(\.odamNMS) { usesOdamNMS ? pass.suppressed(by: .odam(odamNMS), limit: detectionsPerImage) : plain }
        kept.detections.removeAll { $0.score <= scoreThreshold }
        // Final boxes lie inside the image. torchvision's heads clip every candidate already; TensorFlow's SSD
        // post-processor suppresses over unclipped boxes and clips the kept ones, as here.
        for index in kept.detections.indices {
            var box = Array(kept.detections[index].box)
            BoxOps.clip(&box, height: image.height, width: image.width)
            kept.detections[index].box = Box(box)
        }
        let keptByNMS = plain.detections.filter { $0.score > scoreThreshold }.count
        // `kept` numbers its candidates within `scored`; the maps take the forward pass's numbering.
        let predictions = kept.detections.map { eligible[$0.candidate] }
        let (finalMaps, finalAgreement) = timed(\.finalMaps) {
            mapMaker.maps(trace: trace, result: result, predictions: predictions, targets: targets)
        }
        let keptMapIndices = kept.detections.map(\.candidate)
        let (records, file, overlays, json) = try timed(\.encode) { () -> ([Record], [UInt8], [[UInt8]], [UInt8]) in
            var records: [Record] = []
            var overlays: [[UInt8]] = []
            for (rank, detection) in kept.detections.enumerated() {
                let normalized = targets.map { finalMaps[rank][$0]!.normalized }
                let map = HeatMap.combined(normalized)
                if makesOverlays {
                    overlays.append(
                        try ImageCodec.encodePNG(
                            pixels: ExplanationWriter.overlay(
                                image, map, box: detection.box,
                                caption: ExplanationWriter.caption(labelName: classNames.name(of: detection.label), score: detection.score)),
                            width: image.width, height: image.height, channels: 3))
                }
                let correlation: Float? =
                    usesOdamNMS
                    ? keptMapIndices.indices.filter { $0 != rank }.map { maps.correlation(keptMapIndices[rank], keptMapIndices[$0]) }.max()
                        ?? 0
                    : nil
                records.append(
                    Record(
                        box: detection.box, score: detection.score, label: detection.label,
                        labelName: classNames.names.isEmpty ? nil : classNames.name(of: detection.label),
                        energyInBox: ExplanationMetrics.energy(
                            map, region: ExplanationMetrics.boxMask(detection.box, height: image.height, width: image.width)),
                        peakInBox: ExplanationMetrics.pointingHit(map, box: detection.box),
                        compactness: ExplanationMetrics.compactness(map, box: detection.box), maxCorrelation: correlation))
            }
            let file = try MapsFile(
                image: ImageSize(height: image.height, width: image.width), targets: targets,
                detections: kept.detections.indices.map { (kept.detections[$0], result.candidates[predictions[$0]].level) },
                maps: finalMaps, classNames: classNames
            ).encoded()
            return (records, file, overlays, try Self.json(records, image: image, classNames: classNames))
        }
        return Output(
            records: records, candidates: result.candidates.count, keptByNMS: keptByNMS, mapsFile: file, overlays: overlays,
            detectionsJSON: json, timings: timings, candidateAgreement: candidateAgreement, finalAgreement: finalAgreement)
    }

    static func json(_ records: [Record], image: RGBImage, classNames: ClassNames) throws -> [UInt8] {
        let detections: [[String: Any]] = records.enumerated().map { rank, record in
            [
                "rank": rank, "box": record.box.map(Double.init), "score": Double(record.score), "label": record.label,
                "label_name": classNames.name(of: record.label),
                "energy_in_box": record.energyInBox, "peak_in_box": record.peakInBox, "compactness": record.compactness,
                "max_correlation": record.maxCorrelation.map { Double($0) as Any } ?? NSNull(), "maps": "d\(rank).*",
            ]
        }
        let document: [String: Any] = ["width": image.width, "height": image.height, "detections": detections]
        return Array(try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
