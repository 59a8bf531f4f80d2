import Foundation
import ObjectStore
import Runner
import Testing

/// Job specs: the shipped examples read as they say, and malformed specs are refused naming the file, line or key.
struct JobSpecTests {
    static let jobs: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Jobs").path
    }()

    @Test func theShippedExamplesRead() throws {
        let shared = try JobSpec.read(contentsOf: Self.jobs + "/shared-folder.yaml")
        #expect(shared.spec == JobSpec(), "the shared-folder example spells out the defaults")
        #expect(shared.document["shard_size"] as? Int == 16 && shared.document["name"] as? String == "shared-folder")
        let http = try JobSpec.read(contentsOf: Self.jobs + "/http-source.yaml")
        #expect(http.spec.output.store == "s3://odam-results/street-2026" && http.spec.output.addressing == "virtual")
        #expect(http.spec.output.region == "eu-central-1" && http.spec.output.upload.overlays && http.spec.output.upload.maps)
        #expect((http.document["source"] as? [String: Any])?["url"] as? String == "https://images.example.org/datasets/street-2026")
        let staged = try JobSpec.read(contentsOf: Self.jobs + "/s3-staged.yaml")
        #expect(staged.spec.nms.method == "nms" && staged.spec.model.weights == "s3://odam-models/fcos_synth_baseline.safetensors")
        #expect(staged.spec.model.sha256?.count == 64)
        #expect((staged.document["source"] as? [String: Any])?["stage"] as? Bool == true)
    }

    @Test func yamlReadsNestingSequencesQuotesAndComments() throws {
        let text = """
            # a comment
            name: "it's: quoted"   # trailing comment
            list:
              - 1
              - two
              - key: value
                other: 2.5
            flow: [a, 'b c', 3]
            empty:
            nested:
              deeper:
                flag: yes
            """
        let value = try #require(try YAMLReader.parse(text, file: "t.yaml") as? [String: Any])
        #expect(value["name"] as? String == "it's: quoted")
        let list = try #require(value["list"] as? [Any])
        #expect(list.count == 3 && list[0] as? Int == 1 && list[1] as? String == "two")
        #expect((list[2] as? [String: Any])?["other"] as? Double == 2.5)
        #expect(value["flow"] as? [AnyHashable] == ["a", "b c", 3])
        #expect(value["empty"] is NSNull)
        #expect(((value["nested"] as? [String: Any])?["deeper"] as? [String: Any])?["flag"] as? Bool == true)
    }

    @Test(arguments: [
        ("model:\n  spce: shipped\n", "unknown key 'model.spce'"),
        ("nms:\n  iou: high\n", "'nms.iou' must be"),
        ("odam:\n  targets: [score, nose]\n", "unknown target 'nose'"),
        ("output:\n  store: ftp://x\n", "output.store must be"),
        ("nms:\n\tiou: 0.5\n", "line 2: tabs"),
        ("nms:\n  iou: 0.5\n    low: 0.2\n", "line 3: unexpected indentation"),
        ("name: a\nname: b\n", "line 2: the key 'name' appears twice"),
        ("model:\n  spec: x.json\n  weights: s3://b/w.safetensors\n", "model.sha256 is needed"),
        ("base: &anchor\n", "line 1: '&'"),
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
