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

        // --json: one object with every method's COCO and crowd metrics (undefined ones null) and the skipped image.
        let json = try DetectCommandTests.run([
            "eval", "detect", "--annotations", annotations.path, "--images", scratch.path, "--model", model.path + ".json",
            "--weights", model.path + ".pth", "--nms", "nms,odam", "--threads", "2", "--json",
        ])
        #expect(json.status == 0, "\(json.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["images"] as? Int == 1 && (report["failures"] as? [String])?.first?.contains("broken.png") == true)
        let methods = try #require(report["methods"] as? [[String: Any]])
        #expect(methods.map { $0["method"] as? String } == ["nms", "odam"])
        for method in methods {
            let coco = try #require(method["coco"] as? [String: Any])
            #expect(coco.count == 12 && coco.values.allSatisfy { $0 is NSNull || (($0 as? Double).map { (0...1).contains($0) } ?? false) })
            let crowd = try #require(method["crowd"] as? [String: Any])
            #expect(crowd["ap50"] != nil && crowd["mr2"] != nil && crowd["crowd_count"] as? Int == 0)
        }

        let unknown = try DetectCommandTests.run([
            "eval", "detect", "--annotations", annotations.path, "--images", scratch.path, "--model", model.path + ".json",
            "--weights", model.path + ".pth", "--nms", "fastest",
        ])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown method 'fastest'"))
    }

    @Test func evalExplainPrintsJSON() throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("odam-eval-explain-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let samples = DetectCommandTests.repository.appendingPathComponent("Tests/SampleImages")
        let photo = scratch.appendingPathComponent("astronaut.png")
        try FileManager.default.copyItem(at: samples.appendingPathComponent("astronaut.png"), to: photo)
        // The shipped model's best detection as the ground truth, so that one object is matched and explained.
        let detect = try DetectCommandTests.run(["detect", photo.path])
        let first = try #require(
            detect.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .first,
            "\(detect.stdout)\(detect.stderr)")
        let box = try #require(first["box"] as? [Double])
        let label = try #require(first["label"] as? Int)
        let coco: [String: Any] = [
            "images": [["id": 1, "file_name": "astronaut.png", "width": 512, "height": 512]],
            "categories": [["id": label, "name": "thing"]],
            "annotations": [
                [
                    "id": 1, "image_id": 1, "category_id": label, "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "area": (box[2] - box[0]) * (box[3] - box[1]), "iscrowd": 0,
                ]
            ],
        ]
        let annotations = scratch.appendingPathComponent("coco.json")
        try JSONSerialization.data(withJSONObject: coco).write(to: annotations)
        let result = try DetectCommandTests.run([
            "eval", "explain", "--annotations", annotations.path, "--images", scratch.path, "--methods", "odam,gradcam", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        let methods = try #require(report["methods"] as? [[String: Any]])
        #expect(methods.map { $0["method"] as? String } == ["odam", "gradcam"])
        for method in methods {
            #expect(method["objects"] as? Int == 1, "\(method)")
            #expect((method["energy_box"] as? Double).map { $0 > 0 && $0 <= 1 } == true)
            #expect((method["vea"] as? [Any])?.count == 9 && method["randomized_correlation"] is NSNull)
            #expect(method["deletion"] is NSNull && method["insertion_auc"] is NSNull, "curves not asked for are null")
        }
    }

    @Test func benchNMSTimesEachMethod() throws {
        let result = try DetectCommandTests.run(["bench", "nms", "--counts", "200", "--model", "none", "--runs", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].contains("Odam-NMS ms") && lines[1].hasPrefix("200 "))
    }
}
