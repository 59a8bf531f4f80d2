import DefaultModel
import Detection
import Digest
import Files
import Foundation
import ObjectStore

/// What a worker opens for a job: its object store, where its images come from, and its detector.
public enum JobResources {
    /// The job's output store: a local folder (`file://`) or S3 (`s3://bucket/prefix`, endpoint and region from the
    /// spec or `AWS_ENDPOINT_URL`/`AWS_REGION`, else AWS's own endpoint for the region; credentials only from the
    /// environment).
    public static func store(for output: JobSpec.Output) throws -> any ObjectStore {
        if output.store.hasPrefix("file://") { return try FileStore(root: String(output.store.dropFirst("file://".count))) }
        let location = output.store.dropFirst("s3://".count).split(separator: "/", maxSplits: 1).map(String.init)
        guard let bucket = location.first, !bucket.isEmpty else { throw RunnerError("output.store \(output.store): no bucket") }
        var configuration = try S3Store.Configuration.fromEnvironment(
            bucket: bucket, prefix: location.count > 1 ? location[1] + "/" : "", endpoint: output.endpoint, region: output.region)
        if let addressing = output.addressing { configuration.pathStyle = addressing == .path }
        return S3Store(configuration)
    }

    /// Where a job's images are read from, as recorded in `jobs.source`: a folder every worker sees (a shared path),
    /// an `http(s)://` prefix, or `store:PREFIX` (staged into the job's output store by `odam enqueue --stage`).
    public enum ImageSource {
        case folder(String)
        case http(prefix: String, client: HTTPClient)
        case store(any ObjectStore, prefix: String)

        public init(_ source: String, store: any ObjectStore) {
            if source.hasPrefix("http://") || source.hasPrefix("https://") {
                self = .http(
                    prefix: source.hasSuffix("/") ? String(source.dropLast()) : source, client: HTTPClient(maxAttempts: 4, timeout: 60))
            } else if source.hasPrefix("store:") {
                self = .store(store, prefix: String(source.dropFirst("store:".count)))
            } else {
                self = .folder(source)
            }
        }

        /// The key of a staged image: the prefix and the sanitized relative path.
        public static func stagedKey(prefix: String, path: String) -> String { sanitizedKey(prefix + "/" + path) }

        /// The bytes of the image at `path` (relative to the source); errors name the image and the cause.
        public func fetch(_ path: String) throws -> [UInt8] {
            // Paths come from the database: one that climbs out of the source is refused, not followed.
            guard !path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw RunnerError("\(path): refused (an image path must stay inside the job's source)")
            }
            switch self {
            case .folder(let root):
                // Resolved and checked again here: the file may have become a link, or a FIFO, since the walk.
                return try RegularFile.read(root + "/" + path, inside: root)
            case .http(let prefix, let client):
                let encoded = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
                let url = prefix + "/" + encoded
                let response = try client.request(method: "GET", url: url, body: nil, what: "fetching \(path)")
                guard response.status == 200 else { throw RunnerError("\(url): HTTP \(response.status)") }
                return response.body
            case .store(let store, let prefix):
                let key = Self.stagedKey(prefix: prefix, path: path)
                guard let bytes = try store.get(key) else { throw RunnerError("\(store.url(for: key)): the staged image is missing") }
                return bytes
            }
        }
    }

    /// Checks, before a job is recorded, what every worker will need: the model's weights read and load, and the
    /// store takes a write and gives it back (a small object at `_odam/preflight`, overwritten each time). Errors name
    /// the part that cannot work, so that a job that cannot run fails at enqueue instead of after its retries.
    public static func preflight(_ spec: JobSpec, cache: String) throws {
        do {
            _ = try detector(for: spec.model, cache: cache) { bucket in
                var output = spec.output
                output.store = "s3://" + bucket
                return try store(for: output)
            }
        } catch {
            throw RunnerError("the job's model cannot be loaded: \(error)")
        }
        let probe = Array("odam preflight \(Date().timeIntervalSince1970)".utf8)
        do {
            let store = try store(for: spec.output)
            try store.put("_odam/preflight", bytes: probe, contentType: "text/plain")
            guard try store.get("_odam/preflight") == probe else {
                throw ObjectStoreError("\(store.url(for: "_odam/preflight")): a written object did not read back")
            }
        } catch {
            throw RunnerError("the job's store \(spec.output.store) cannot be written: \(error)")
        }
    }

    /// The job's detector and its class names: the shipped model, or a model spec with weights from a local path or an `s3://` URL
    /// (downloaded once per worker machine into `cache`, named by its SHA-256, and checked against the spec's).
    public static func detector(for model: JobSpec.Model, cache: String, store: (String) throws -> any ObjectStore) throws
        -> (detector: any Detector, classNames: ClassNames)
    {
        let spec: ModelSpec
        var weights: String
        if let variant = DefaultModel.variant(named: model.spec), model.weights == nil {
            let files = try DefaultModel.files(variant)
            (spec, weights) = (try ModelSpec.resolve(files.spec), files.weights)
        } else {
            spec = try ModelSpec.resolve(model.spec == "shipped" ? try DefaultModel.files().spec : model.spec)
            weights = model.weights!
        }
        if weights.hasPrefix("s3://") {
            let expected = model.sha256!.lowercased()
            let cached =
                cache + "/" + expected + "." + ((weights as NSString).pathExtension.isEmpty ? "bin" : (weights as NSString).pathExtension)
            if !FileManager.default.fileExists(atPath: cached) {
                let location = weights.dropFirst("s3://".count).split(separator: "/", maxSplits: 1).map(String.init)
                guard location.count == 2 else { throw RunnerError("model.weights \(weights): expected s3://BUCKET/KEY") }
                guard let bytes = try store(location[0]).get(location[1]) else {
                    throw RunnerError("model.weights \(weights): no such object")
                }
                let actual = SHA256.hex(bytes)
                guard actual == expected else {
                    throw RunnerError("model.weights \(weights): SHA-256 \(actual) differs from the spec's \(expected)")
                }
                try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
                try FileStore(root: cache).put(
                    (cached as NSString).lastPathComponent, bytes: bytes, contentType: "application/octet-stream")
            }
            weights = cached
        } else if let expected = model.sha256 {
            guard let data = FileManager.default.contents(atPath: weights) else {
                throw RunnerError("model.weights \(weights): cannot read")
            }
            let actual = SHA256.hex([UInt8](data))
            guard actual == expected.lowercased() else {
                throw RunnerError("model.weights \(weights): SHA-256 \(actual) differs from the spec's \(expected)")
            }
        }
        let detector = try spec.load(weights: weights)
        return (detector, try ClassNames(spec: spec, classCount: detector.classCount))
    }
}
