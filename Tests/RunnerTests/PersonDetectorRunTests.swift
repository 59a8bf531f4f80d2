import Engine
import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// The real person detector on real photos, chosen by name: `odam run` with a job spec naming
/// `ssdlite_mobilenet_v2_person` finds the astronaut and the cameraman and nothing on the cat or the coffee, with exact
/// ODAM maps checked against plain autograd; `odam detect --model NAME` needs no weights either.
struct PersonDetectorRunTests {
    @Test func theShippedPersonDetectorFindsThePeopleAndNothingElse() throws {
        let scratch = try RunFolder("person", photos: ["astronaut.png", "camera.png", "chelsea.png", "coffee.png"])
        defer { scratch.remove() }
        let folder = scratch.path
        try "model:\n  spec: ssdlite_mobilenet_v2_person\n".write(toFile: folder + "/job.yaml", atomically: true, encoding: .utf8)
        let run = try OdamBinary.run(
            ["run", "photos", "--job", "job.yaml", "--workers", "1", "--no-report", "--migrations", Repository.migrations], in: folder)
        #expect(run.status == 0 && run.output.contains("4 images ok, 0 failed"), "\(run.output)")
        #expect(run.output.contains("detections kept: 2") && run.output.contains("levels recomputed 0"), "\(run.output)")
        // The scores are TensorFlow's own for these photos (its best detection, from the golden fixture).
        let tensorFlow = try FixtureTensors(path: Repository.path("Tests/DetectionTests/Fixtures/ssdlite_golden.safetensors"))
        let expected = ["astronaut", "camera"].map { tensorFlow.tensor("\($0).scores").scalars[0] }
        let rows = try OdamBinary.run(
            ["sql", "-At", "-F", ",", "-c", "SELECT path, label_name, score FROM detection_maps ORDER BY path"], in: folder)
        #expect(rows.status == 0, "\(rows.output)")
        let fields = rows.stdout.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        #expect(fields.map { Array($0.prefix(2)) } == [["astronaut.png", "person"], ["camera.png", "person"]], "\(rows.output)")
        for (row, score) in zip(fields, expected) {
            #expect(abs((Float(row.last ?? "") ?? -1) - score) < 1e-4, "\(row) against TensorFlow's \(score)")
        }
        let categories = try OdamBinary.run(
            ["sql", "-At", "-F", ",", "-c", "SELECT job_id, label, name FROM categories ORDER BY label"], in: folder)
        #expect(categories.stdout.split(separator: "\n") == ["1,1,person"], "the job's classes: \(categories.output)")

        let detect = try OdamBinary.run(["detect", "--model", "ssdlite_mobilenet_v2_person", "photos/camera.png"], in: folder)
        let line = try #require(
            try JSONSerialization.jsonObject(with: Data((detect.stdout.split(separator: "\n").first ?? "").utf8)) as? [String: Any],
            "\(detect.output)")
        #expect(detect.status == 0 && line["label_name"] as? String == "person")
        #expect(abs(Float((line["score"] as? Double) ?? -1) - expected[1]) < 1e-4)
        try #"["background", "pedestrian"]"#.write(toFile: folder + "/labels.json", atomically: true, encoding: .utf8)
        let renamed = try OdamBinary.run(
            ["detect", "--model", "ssdlite_mobilenet_v2_person", "--labels", "labels.json", "photos/camera.png"], in: folder)
        #expect(renamed.status == 0 && renamed.stdout.contains("\"label_name\":\"pedestrian\""), "\(renamed.output)")
        let bad = try OdamBinary.run(["detect", "--model", "ssdlite_mobilenet_v2", "photos/camera.png"], in: folder)
        #expect(bad.status != 0, "an unknown name without weights is refused: \(bad.output)")
    }
}
