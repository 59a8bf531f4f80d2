import DefaultModel
public import Explain
import Files
import Foundation

/// What a job runs: the model and its weights, the ODAM maps, the NMS, where the results go and what is uploaded.
/// Written as YAML in `Jobs/` (or JSON), stored as JSON in `jobs.spec`, read by every worker.
public struct JobSpec: Codable, Sendable, Equatable {
    public struct Model: Codable, Sendable, Equatable {
        public init() {}

        /// `shipped` (the default model), a shipped model's name (`ssdlite_mobilenet_v2_person`, `fcos_synth_odamtrain`,
        /// `fcos_synth_baseline`; no weights), a torchvision builder name, or a JSON model spec file.
        public var spec: String = "shipped"
        /// A local path or an `s3://bucket/key` URL; nil for the shipped model.
        public var weights: String?
        /// The weights' SHA-256 (hex): checked after download, and the key of each worker's cache.
        public var sha256: String?
    }

    public struct Odam: Codable, Sendable, Equatable {
        public init() {}

        /// Targets of the kept detections' maps (`score`, `logit`, `x1`, `y1`, `x2`, `y2`); `combined` is always added.
        public var targets: [ExplanationTarget] = [.score, .x1, .y1, .x2, .y2]
        /// `auto` (FCOS: the reversed head on levels whose error estimates allow it, exact elsewhere; the other
        /// detectors: exact), `exact` (autograd through the real head) or `approximate` (FCOS's reversed head with
        /// GroupNorm frozen); the reversed head's levels are checked against exact samples and recomputed exactly when
        /// they fall below r 0.999.
        public var path: MapPath = .auto
    }

    public struct NMS: Codable, Sendable, Equatable {
        public init() {}

        public enum Method: String, Codable, Sendable, CaseIterable {
            /// Odam-NMS.
            case odam
            /// Plain NMS at the same IoU threshold.
            case nms
        }

        public var method: Method = .odam
        /// Odam-NMS's T_iou, T_l and T_h; nil takes the detector's (FCOS and RetinaNet 0.5, 0.2, 0.8 as the paper;
        /// Faster R-CNN 0.6, 0.3, 0.7 as the official code).
        public var iou: Float?
        public var low: Float?
        public var high: Float?
        /// Kept detections at or below this score get no maps and no row.
        public var scoreThreshold: Float = 0.3
        public var maxDetections: Int = 100

        enum CodingKeys: String, CodingKey, CaseIterable {
            case method, iou, low, high
            case scoreThreshold = "score_threshold"
            case maxDetections = "max_detections"
        }
    }

    public struct Upload: Codable, Sendable, Equatable {
        public init() {}

        /// The safetensors file of all the image's maps.
        public var maps: Bool = true
        /// A color overlay PNG of each kept detection's combined map.
        public var overlays: Bool = false
        /// The detections as JSON.
        public var detections: Bool = true
    }

    public struct Output: Codable, Sendable, Equatable {
        public init() {}

        /// `file://PATH` (relative to the worker's folder, or absolute) or `s3://BUCKET[/PREFIX]`.
        public var store: String = "file://.odam/objects"
        /// The S3 endpoint (default: `AWS_ENDPOINT_URL`); credentials only ever come from the environment.
        public var endpoint: String?
        /// The S3 region (default: `AWS_REGION`, else us-east-1).
        public var region: String?
        public enum Addressing: String, Codable, Sendable, CaseIterable {
            /// endpoint/bucket/key
            case path
            /// bucket.endpoint/key
            case virtual
        }

        /// Nil: virtual-hosted on AWS's own endpoint (derived from the region when no endpoint is given), path-style
        /// on a given endpoint.
        public var addressing: Addressing?
        public var upload = Upload()
    }

    /// Where the workers read the images: an http(s) URL prefix, or the job's store (staged by the enqueuer).
    public struct Source: Codable, Sendable, Equatable {
        public init() {}

        public var url: String?
        public var stage: Bool?
    }

    /// The job's name (default: the folder's name).
    public var name: String?
    /// Images per shard (default: 16, fewer for small folders).
    public var shardSize: Int?
    /// Images with more pixels fail (a decompression-bomb guard that bounds each worker's memory; default
    /// ``ImageCodec/defaultMaximumPixels``: 64 megapixels, less on machines with little memory).
    public var maxPixels: Int?
    public var source: Source?
    public var model = Model()
    public var odam = Odam()
    public var nms = NMS()
    public var output = Output()

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, source, model, odam, nms, output
        case shardSize = "shard_size"
        case maxPixels = "max_pixels"
    }

    func validate(file: String) throws {
        if let name, name.trimmingCharacters(in: .whitespaces).isEmpty { throw RunnerError("\(file): 'name' must not be empty") }
        if let shardSize, !(1...100_000).contains(shardSize) {
            throw RunnerError("\(file): 'shard_size' must lie in 1...100000, not \(shardSize)")
        }
        if let maxPixels, maxPixels < 1 { throw RunnerError("\(file): 'max_pixels' must be positive, not \(maxPixels)") }
        if let url = source?.url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw RunnerError("\(file): 'source.url' must be an http(s) URL, not '\(url)'")
        }
        guard (0...1).contains(nms.scoreThreshold) else {
            throw RunnerError("\(file): 'nms.score_threshold' must lie in [0, 1], not \(nms.scoreThreshold)")
        }
        if let low = nms.low, let high = nms.high, low > high {
            throw RunnerError("\(file): 'nms.low' (\(low)) must not exceed 'nms.high' (\(high))")
        }
        guard [nms.iou, nms.low, nms.high].allSatisfy({ $0.map { (0...1).contains($0) } ?? true }), nms.maxDetections > 0 else {
            throw RunnerError("\(file): nms thresholds must lie in [0, 1] and max_detections be positive")
        }
        let location = output.store.drop { $0 != ":" }.dropFirst("://".count)
        guard output.store.hasPrefix("file://") || output.store.hasPrefix("s3://"), !location.isEmpty,
            !location.hasPrefix("/") || output.store.hasPrefix("file://")
        else {
            throw RunnerError("\(file): 'output.store' must be file://PATH or s3://BUCKET[/PREFIX], not '\(output.store)'")
        }
        if DefaultModel.variant(named: model.spec) == nil && model.weights == nil {
            throw RunnerError(
                "\(file): model.weights is needed unless model.spec names a shipped model (shipped, \(DefaultModel.Variant.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        if let weights = model.weights, weights.hasPrefix("s3://"), model.sha256 == nil {
            throw RunnerError("\(file): model.sha256 is needed for s3:// weights (workers cache them by checksum)")
        }
    }

    /// The spec as JSON text, as stored in `jobs.spec`.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
