import Explain
import Foundation
import ObjectStore
import Postgres
import Runner
import ServiceTestSupport
import TestSupport
import Testing

/// Job specs: the shipped examples read as they say, and malformed specs are refused naming the file, line or key.
struct JobSpecTests {
    static let jobs = Repository.path("Jobs")

    @Test func theShippedExamplesRead() throws {
        let shared = try JobSpec.read(contentsOf: Self.jobs + "/shared-folder.yaml")
        var defaults = JobSpec()
        (defaults.name, defaults.shardSize) = ("shared-folder", 16)
        #expect(shared == defaults, "the shared-folder example spells out the defaults")
        let http = try JobSpec.read(contentsOf: Self.jobs + "/http-source.yaml")
        #expect(http.output.store == "s3://odam-results/street-2026" && http.output.addressing == .virtual)
        #expect(http.output.region == "eu-central-1" && http.output.upload.overlays && http.output.upload.maps)
        #expect(http.source?.url == "https://images.example.org/datasets/street-2026")
        let staged = try JobSpec.read(contentsOf: Self.jobs + "/s3-staged.yaml")
        #expect(staged.nms.method == .nms && staged.model.weights == "s3://odam-models/fcos_synth_baseline.safetensors")
        #expect(staged.model.sha256?.count == 64)
        #expect(staged.source?.stage == true)
    }

    @Test(arguments: [
        ("model:\n  spce: shipped\n", "line 2: 'model.spce': unknown key"),
        ("nms:\n  iou: high\n", "line 2: 'nms.iou' must be"),
        (
            "odam:\n  targets: [score, nose]\n",
            "line 2: 'odam.targets[1]': Cannot initialize ExplanationTarget from invalid String value nose"
        ),
        ("output:\n  store: ftp://x\n", "'output.store' must be"),
        ("nms:\n\tiou: 0.5\n", "not valid YAML"),
        ("nms:\n  iou: 0.5\n    low: 0.2\n", "not valid YAML"),
        ("name: a\nname: b\n", "duplicated key(s): 'name'"),
        ("model:\n  spec: x.json\n  weights: s3://b/w.safetensors\n", "model.sha256 is needed"),
        ("base: &anchor\n", "'base': unknown key"),
    ])
    func malformedSpecsAreRefusedWithTheirCause(text: String, cause: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("odam-spec-\(getpid())-\(abs(text.hashValue)).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            try JobSpec.read(contentsOf: path)
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains(cause)
        }
    }

    /// The regression cases of `Tests/HostileInputs/specs`: top-level keys of the wrong type, values out of range.
    @Test(arguments: HostileInput.cases(.spec))
    func hostileSpecsAreRefusedNamingTheKey(_ input: HostileInput) {
        do {
            _ = try JobSpec.read(contentsOf: input.path)
            #expect(input.expect == .ok, "\(input.file) was accepted")
        } catch {
            #expect(input.expect == .error, "\(error)")
            #expect("\(error)".contains(input.error) && "\(error)".contains(input.path), "\(error)")
        }
    }

    /// Every key set: YAML and JSON decode to equal values, and the spec survives its JSON (as `jobs.spec` holds it).
    @Test func aSpecWithEveryKeyDecodesAlikeFromYAMLAndJSON() throws {
        let yaml = """
            name: every-key
            shard_size: 8
            max_pixels: 4000000
            source:
              url: https://example.org/images
            model:
              spec: fcos_resnet50_fpn
              weights: /models/fcos.pth
              sha256: \(String(repeating: "ab", count: 32))
            odam:
              targets: [score, x1, y2]
              path: approximate
            nms:
              method: odam
              iou: 0.6
              low: 0.3
              high: 0.7
              score_threshold: 0.4
              max_detections: 50
            output:
              store: s3://bucket/prefix
              endpoint: http://127.0.0.1:9000
              region: eu-west-1
              addressing: virtual
              upload:
                maps: false
                overlays: true
                detections: true
            """
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odam-every-key-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try yaml.write(toFile: folder + "/spec.yaml", atomically: true, encoding: .utf8)
        let fromYAML = try JobSpec.read(contentsOf: folder + "/spec.yaml")
        try fromYAML.json().write(toFile: folder + "/spec.json", atomically: true, encoding: .utf8)
        let fromJSON = try JobSpec.read(contentsOf: folder + "/spec.json")
        #expect(fromYAML == fromJSON)
        #expect(fromYAML.name == "every-key" && fromYAML.shardSize == 8 && fromYAML.maxPixels == 4_000_000)
        #expect(fromYAML.source?.url == "https://example.org/images" && fromYAML.odam.path == .approximate)
        #expect(fromYAML.nms.iou == 0.6 && fromYAML.nms.maxDetections == 50 && fromYAML.output.upload.overlays)
        #expect(fromYAML != JobSpec())

        // Through the database as workers read it: jobs.spec holds the type's JSON and decodes back to an equal value.
        let jobs = JobStore(try freshTestDatabase("spec_round_trip"))
        let job = try jobs.enqueue(NewJob(name: "t", spec: fromYAML, source: "/data", images: ["a.png"], shardSize: 1))
        #expect(try jobs.job(job).spec == fromYAML)
        #expect(try jobs.unfinishedJob(source: "/data", spec: fromYAML)?.job == job, "the stored JSON equals the type's JSON")
    }

    @Test(arguments: ["../etc/passwd", "/etc/passwd", "a/../../b.png"])
    func imagePathsThatLeaveTheSourceAreRefused(path: String) throws {
        // A folder per case: the cases run in parallel.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("odam-source-\(getpid())-\(abs(path.hashValue))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let source = JobResources.ImageSource(root + "/images", store: try FileStore(root: root + "/objects"))
        #expect {
            try source.fetch(path)
        } throws: { "\($0)".contains("refused") }
    }
}
