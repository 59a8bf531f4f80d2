import Foundation
import Testing

/// `odam explain` run as a process on each detector.
struct ExplainCommandTests {
    @Test(arguments: [("fcos_small", "approximate"), ("retinanet_small", "exact"), ("fasterrcnn_small", "exact")])
    func writesMapsOfEveryDetection(model: String, path: String) throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("odam-explain-\(getpid())-\(model)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let broken = scratch.appendingPathComponent("broken.jpg")
        try Data("no image here".utf8).write(to: broken)
        let base = DetectCommandTests.repository.appendingPathComponent("Tests/DetectionTests/Fixtures/\(model)").path
        let image = DetectCommandTests.repository.appendingPathComponent("Tests/SampleImages/chelsea.png").path
        let out = scratch.appendingPathComponent("maps").path
        let result = try DetectCommandTests.run([
            "explain", "--model", base + ".json", "--weights", base + ".pth", "--out", out, "--targets", "score,x1,combined",
            "--path", path, "--limit", "6", "--threads", "2", image, broken.path,
        ])
        #expect(result.status == 1, "the broken file fails the call")
        #expect(result.stderr.contains("broken.jpg"))
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/chelsea/index.json")))
        let predictions = try #require((index as? [String: Any])?["predictions"] as? [[String: Any]])
        #expect(predictions.count == 6)
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/chelsea")
        for suffix in ["_score.png", "_x1.png", "_combined.png", "_combined_overlay.png"] {
            #expect(files.filter { $0.hasSuffix(suffix) }.count == predictions.count, "\(model): one \(suffix) per prediction")
        }
    }
}
