import Foundation
import Testing

/// `odam detect` and `odam explain` with no model flags use the shipped model, on scenes of the synthetic benchmark.
struct DefaultModelCommandTests {
    @Test func detectAndExplainWithoutModelFlags() throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("odam-default-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let synth = try DetectCommandTests.run(["synth", "--out", scratch + "/data", "--count", "5", "--seed", "1"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let image = scratch + "/data/val/images/000000.png"
        let detect = try DetectCommandTests.run(["detect", "--threads", "2", image])
        #expect(detect.status == 0, "\(detect.stderr)")
        let lines = detect.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(!lines.isEmpty, "the shipped model finds objects in a synthetic scene")
        #expect(lines.allSatisfy { [1, 2, 3].contains($0["label"] as? Int ?? -1) }, "labels are person, car, sign")
        let names = ["__background__", "person", "car", "sign"]
        #expect(lines.allSatisfy { $0["label_name"] as? String == names[$0["label"] as? Int ?? 0] }, "each line names its label")
        let explain = try DetectCommandTests.run(["explain", "--threads", "2", "--out", scratch + "/maps", "--limit", "2", image])
        #expect(explain.status == 0, "\(explain.stderr)")
        #expect(FileManager.default.fileExists(atPath: scratch + "/maps/000000/index.json"))
        let half = try DetectCommandTests.run(["detect", "--weights", "x.safetensors", image])
        #expect(half.status != 0 && half.stderr.contains("--weights needs --model"))
    }
}
