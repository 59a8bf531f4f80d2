import Foundation
import TestSupport
import Testing

/// `odam detect` and `odam explain` with no model flags use the embedded person detector: people on the photos with
/// people, nothing on the others; the synthetic-scene FCOS stays available by name.
struct DefaultModelCommandTests {
    @Test func detectAndExplainWithoutModelFlags() throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("odam-default-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let photos = ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"].map { sampleImagePath($0) }
        let detect = try DetectCommandTests.run(["detect", "--threads", "2"] + photos)
        #expect(detect.status == 0, "\(detect.stderr)")
        let lines = detect.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let found = lines.map { (($0["image"] as? String ?? "") as NSString).lastPathComponent }
        #expect(found == ["astronaut.png", "camera.png"], "one person on each photo with a person, nothing else: \(detect.stdout)")
        #expect(lines.allSatisfy { $0["label"] as? Int == 1 && $0["label_name"] as? String == "person" }, "\(detect.stdout)")
        let explain = try DetectCommandTests.run(["explain", "--threads", "2", "--out", scratch + "/maps", photos[1]])
        #expect(explain.status == 0, "\(explain.stderr)")
        let index = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/maps/camera/index.json")))
                as? [String: Any])
        let predictions = try #require(index["predictions"] as? [[String: Any]])
        #expect(predictions.count == 1 && predictions[0]["label_name"] as? String == "person", "\(index)")

        // The synthetic-scene FCOS by name, on a scene of its benchmark.
        let synth = try DetectCommandTests.run(["synth", "--out", scratch + "/data", "--count", "5", "--seed", "1"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let scene = try DetectCommandTests.run(["detect", "--model", "fcos_synth_odamtrain", scratch + "/data/val/images/000000.png"])
        let shapes = scene.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(scene.status == 0 && !shapes.isEmpty, "the synthetic FCOS finds objects in a synthetic scene: \(scene.stderr)")
        let names = ["__background__", "person", "car", "sign"]
        #expect(shapes.allSatisfy { $0["label_name"] as? String == names[$0["label"] as? Int ?? 0] }, "each line names its label")
        let half = try DetectCommandTests.run(["detect", "--weights", "x.safetensors", photos[0]])
        #expect(half.status != 0 && half.stderr.contains("--weights needs --model"))
    }
}
