import Foundation
import Testing

/// `odam eval detect` and `odam bench nms` run as processes.
struct EvalCommandTests {
    @Test func evalDetectPrintsEveryMethodAndSkipsABadImage() throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("odam-eval-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let samples = DetectCommandTests.repository.appendingPathComponent("Tests/SampleImages")
        try FileManager.default.copyItem(at: samples.appendingPathComponent("coffee.png"), to: scratch.appendingPathComponent("coffee.png"))
        try Data("not an image".utf8).write(to: scratch.appendingPathComponent("broken.png"))
        let coco: [String: Any] = [
            "images": [
                ["id": 1, "file_name": "coffee.png", "width": 600, "height": 400],
                ["id": 2, "file_name": "broken.png", "width": 10, "height": 10],
            ],
            "categories": [["id": 1, "name": "person"], ["id": 2, "name": "cup"]],
            "annotations": [
                ["id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 50, 120, 200], "area": 24000, "iscrowd": 0],
                ["id": 2, "image_id": 1, "category_id": 2, "bbox": [300, 100, 80, 60], "area": 4800, "iscrowd": 0],
            ],
        ]
        let annotations = scratch.appendingPathComponent("coco.json")
        try JSONSerialization.data(withJSONObject: coco).write(to: annotations)
        let model = DetectCommandTests.repository.appendingPathComponent("Tests/DetectionTests/Fixtures/fcos_small")
        let result = try DetectCommandTests.run([
            "eval", "detect", "--annotations", annotations.path, "--images", scratch.path, "--model", model.path + ".json",
            "--weights", model.path + ".pth", "--nms", "nms,softnms,odam", "--threads", "2",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("method") == true)
        for method in ["nms", "softnms", "odam"] { #expect(lines.contains { $0.hasPrefix(method + " ") }, "a row for \(method)") }
        #expect(lines.contains { $0.hasPrefix("1 images; seconds per image: forward") })
        #expect(lines.contains { $0.hasPrefix("skipped:") && $0.contains("broken.png") })

        let unknown = try DetectCommandTests.run([
            "eval", "detect", "--annotations", annotations.path, "--images", scratch.path, "--model", model.path + ".json",
            "--weights", model.path + ".pth", "--nms", "fastest",
        ])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown method 'fastest'"))
    }

    @Test func benchNMSTimesEachMethod() throws {
        let result = try DetectCommandTests.run(["bench", "nms", "--counts", "200", "--model", "none", "--runs", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].contains("Odam-NMS ms") && lines[1].hasPrefix("200 "))
    }
}
