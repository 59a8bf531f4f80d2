import Files
import Foundation
import SpecDecoding
import Yams

/// Job specs decode along one path: YAML (Yams) or JSON straight into ``JobSpec``, each key over its default, with
/// unknown keys, wrong types and out-of-range values refused, naming the file, the line (YAML) and the key. The
/// stored form (`jobs.spec`) is the type's own JSON, decoded back the same way.
extension JobSpec {
    /// Reads a job spec file (`.json`, else YAML); errors name the file, the line and the key.
    public static func read(contentsOf path: String) throws -> JobSpec {
        let bytes: [UInt8]
        do {
            bytes = try RegularFile.read(path, maximumBytes: 1 << 20)
        } catch {
            throw RunnerError("\(path): cannot read the job spec (\(error.reason))")
        }
        return try decode(Data(bytes), file: path, json: path.hasSuffix(".json"))
    }

    /// Decodes a spec from YAML or JSON text.
    public static func decode(_ data: Data, file: String, json: Bool) throws -> JobSpec {
        let spec: JobSpec
        if json {
            do { spec = try JSONDecoder().decode(JobSpec.self, from: data) } catch DecodingError.dataCorrupted(let context)
                where context.codingPath.isEmpty
            {
                throw RunnerError("\(file): not valid JSON, or nested too deeply (\(context.debugDescription))")
            } catch let error as DecodingError {
                throw RunnerError("\(file)\(describe(error, lines: nil))")
            } catch {
                throw RunnerError("\(file): not valid JSON, or nested too deeply (\(error.localizedDescription))")
            }
        } else {
            let text = String(decoding: data, as: UTF8.self)
            let root: Node?
            do { root = try Yams.compose(yaml: text) } catch {
                // libyaml's message quotes the offending line, which a hostile file makes megabytes long.
                let message = "\(error)"
                throw RunnerError("\(file): not valid YAML: \(message.count > 400 ? message.prefix(400) + "…" : message)")
            }
            guard let root else { return JobSpec() }
            guard root.mapping != nil else { throw RunnerError("\(file): a job spec must be a mapping of keys") }
            do { spec = try YAMLDecoder().decode(JobSpec.self, from: root) } catch let error as DecodingError {
                throw RunnerError("\(file)\(describe(error, lines: root))")
            }
        }
        try spec.validate(file: file)
        return spec
    }

    /// The spec stored in `jobs.spec` (its own JSON).
    public static func stored(_ text: String, job: Int) throws -> JobSpec {
        try decode(Data(text.utf8), file: "job \(job)'s stored spec", json: true)
    }

    /// A decoding error as "KEY must be TYPE", with the YAML line of the key when `lines` is the document.
    static func describe(_ error: DecodingError, lines root: Node?) -> String {
        error.describedByKey { codingPath in
            guard var node = root else { return nil }
            for key in codingPath {
                if let index = key.intValue, let sequence = node.sequence, index < sequence.count {
                    node = sequence[index]
                } else if let mapping = node.mapping, let child = mapping[key.stringValue] {
                    node = child
                } else {
                    break
                }
            }
            return node.mark.map { "line \($0.line)" }
        }
    }
}

extension JobSpec {
    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        name = try c.decodeIfPresent(String.self, forKey: .name)
        shardSize = try c.decodeIfPresent(Int.self, forKey: .shardSize)
        maxPixels = try c.decodeIfPresent(Int.self, forKey: .maxPixels)
        source = try c.decodeIfPresent(Source.self, forKey: .source)
        model = try c.value(.model, or: model)
        odam = try c.value(.odam, or: odam)
        nms = try c.value(.nms, or: nms)
        output = try c.value(.output, or: output)
    }
}

extension JobSpec.Model {
    enum CodingKeys: String, CodingKey, CaseIterable { case spec, weights, sha256 }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        spec = try c.value(.spec, or: spec)
        weights = try c.decodeIfPresent(String.self, forKey: .weights)
        sha256 = try c.decodeIfPresent(String.self, forKey: .sha256)
    }
}

extension JobSpec.Odam {
    enum CodingKeys: String, CodingKey, CaseIterable { case targets, path }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        targets = try c.value(.targets, or: targets)
        path = try c.value(.path, or: path)
    }
}

extension JobSpec.NMS {
    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        method = try c.value(.method, or: method)
        iou = try c.decodeIfPresent(Float.self, forKey: .iou)
        low = try c.decodeIfPresent(Float.self, forKey: .low)
        high = try c.decodeIfPresent(Float.self, forKey: .high)
        scoreThreshold = try c.value(.scoreThreshold, or: scoreThreshold)
        maxDetections = try c.value(.maxDetections, or: maxDetections)
    }
}

extension JobSpec.Upload {
    enum CodingKeys: String, CodingKey, CaseIterable { case maps, overlays, detections }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        maps = try c.value(.maps, or: maps)
        overlays = try c.value(.overlays, or: overlays)
        detections = try c.value(.detections, or: detections)
    }
}

extension JobSpec.Output {
    enum CodingKeys: String, CodingKey, CaseIterable { case store, endpoint, region, addressing, upload }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        store = try c.value(.store, or: store)
        endpoint = try c.decodeIfPresent(String.self, forKey: .endpoint)
        region = try c.decodeIfPresent(String.self, forKey: .region)
        addressing = try c.decodeIfPresent(JobSpec.Output.Addressing.self, forKey: .addressing)
        upload = try c.value(.upload, or: upload)
    }
}

extension JobSpec.Source {
    enum CodingKeys: String, CodingKey, CaseIterable { case url, stage }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        url = try c.decodeIfPresent(String.self, forKey: .url)
        stage = try c.decodeIfPresent(Bool.self, forKey: .stage)
    }
}
