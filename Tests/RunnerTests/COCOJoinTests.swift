import Detection
import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// Results that join the user's own annotations: a dataset whose file names are not numbers and whose image ids are
/// not odam's, run with `odam run`, exported with `odam results --format coco --annotations`, and evaluated with
/// `odam eval coco` (odam's COCOeval, checked against pycocotools' own numbers in the detection tests).
struct COCOJoinTests {
    @Test func resultsTakeTheGroundTruthsIdsAndEvaluate() throws {
        let scratch = try RunFolder("coco-join", photos: [])
        defer { scratch.remove() }
        let folder = scratch.path
        let synth = try OdamBinary.run(["synth", "--out", "synth", "--count", "4", "--seed", "11"], in: folder)
        #expect(synth.status == 0, "\(synth.output)")
        // The dataset: dataset/annotations.json and dataset/images/<set>/<name>.png, ids 9001 and up in reverse order.
        let original =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/synth/train/annotations.json")))
            as! [String: Any]
        var images = original["images"] as! [[String: Any]]
        var annotations = original["annotations"] as! [[String: Any]]
        var newIDs: [Int: Int] = [:]
        for (index, image) in images.enumerated() {
            let oldID = image["id"] as! Int
            let name = "images/set-\(index % 2 == 0 ? "a" : "b")/street corner \(["one", "two", "three", "four"][index]).png"
            newIDs[oldID] = 9001 + images.count - index
            try FileManager.default.createDirectory(
                atPath: folder + "/dataset/" + (name as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: folder + "/synth/train/" + (image["file_name"] as! String), toPath: folder + "/dataset/" + name)
            images[index]["file_name"] = name
            images[index]["id"] = newIDs[oldID]
        }
        for index in annotations.indices { annotations[index]["image_id"] = newIDs[annotations[index]["image_id"] as! Int] }
        var groundTruth = original
        groundTruth["images"] = images
        groundTruth["annotations"] = annotations
        let annotationFile = folder + "/dataset/annotations.json"
        try JSONSerialization.data(withJSONObject: groundTruth).write(to: URL(fileURLWithPath: annotationFile))

        // Synthetic scenes: the FCOS trained on them, by name.
        try "model:\n  spec: fcos_synth_odamtrain\n".write(toFile: folder + "/job.yaml", atomically: true, encoding: .utf8)
        let run = try OdamBinary.run(
            [
                "run", "dataset/images", "--job", "job.yaml", "--workers", "1", "--no-report", "--migrations",
                Repository.migrations,
            ], in: folder)
        #expect(run.status == 0 && run.output.contains("4 images ok"), "\(run.output)")
        let joined = try OdamBinary.run(
            ["results", "1", "--format", "coco", "--annotations", annotationFile, "--out", folder + "/joined.json"], in: folder)
        #expect(joined.status == 0, "\(joined.output)")
        let results = try COCOResult.load(contentsOf: folder + "/joined.json")
        #expect(!results.isEmpty && results.allSatisfy { (9002...9005).contains($0.imageID) }, "the ground truth's ids")

        // The same detections numbered independently, from the JSON lines export and the test's own name → id table.
        let lines = try OdamBinary.run(["results", "1", "--format", "jsonl"], in: folder).stdout.split(separator: "\n")
        let ids = Dictionary(
            uniqueKeysWithValues: images.map { (($0["file_name"] as! String).dropFirst("images/".count), $0["id"] as! Int) })
        let expected = try lines.map { line -> COCOResult in
            let row = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let (x1, y1, x2, y2) = (row["x1"] as! Double, row["y1"] as! Double, row["x2"] as! Double, row["y2"] as! Double)
            return COCOResult(
                imageID: try #require(ids[Substring(row["path"] as! String)]), categoryID: row["label"] as! Int,
                bbox: [x1, y1, x2 - x1, y2 - y1], score: row["score"] as! Double)
        }
        #expect(results.count == expected.count)
        let truth = try COCOAnnotations(contentsOf: annotationFile)
        let reference = try COCOEvaluation().evaluate(groundTruth: truth, results: expected)

        let evaluated = try OdamBinary.run(
            ["eval", "coco", folder + "/joined.json", "--annotations", annotationFile, "--json"], in: folder)
        #expect(evaluated.status == 0, "\(evaluated.output)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(evaluated.stdout.utf8)) as? [String: Any])
        let ap = try #require(summary["ap"] as? Double)
        #expect(abs(ap - reference.ap) < 1e-12 && ap > 0.3, "AP \(ap) against \(reference.ap) numbered by the test")

        // Without the annotations the ids are odam's, which this ground truth does not know: refused, as pycocotools'
        // loadRes refuses results of images outside the annotation file.
        _ = try OdamBinary.run(["results", "1", "--format", "coco", "--out", folder + "/plain.json"], in: folder)
        let plain = try COCOResult.load(contentsOf: folder + "/plain.json")
        #expect(throws: (any Error).self) { try COCOEvaluation().evaluate(groundTruth: truth, results: plain) }

        // odam detect numbers its COCO results the same way.
        let detected = try OdamBinary.run(
            [
                "detect", "--model", "fcos_synth_odamtrain", "--coco-results", folder + "/detected.json", "--annotations", annotationFile,
                folder + "/dataset/images/set-a/street corner one.png", folder + "/dataset/images/set-b/street corner two.png",
            ], in: folder)
        #expect(detected.status == 0, "\(detected.output)")
        let detectedIDs = Set(try COCOResult.load(contentsOf: folder + "/detected.json").map(\.imageID))
        #expect(detectedIDs == [images[0]["id"] as! Int, images[1]["id"] as! Int])
    }
}
