import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// `odam detect` run as a process, as users run it (needs `swift build -c release` first; the README's test
/// command does that).
struct DetectCommandTests {
    static let repository = URL(fileURLWithPath: Repository.root)
    static var odam: URL { URL(fileURLWithPath: OdamBinary.path) }

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let run = try OdamBinary.run(arguments)
        return (run.status, run.stdout, run.stderr)
    }

    @Test func detectsEverySampleImageAndReportsEachBadFile() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.odam.path), "build odam first: swift build -c release")
        let samples = Self.repository.appendingPathComponent("Tests/SampleImages")
        let names = try FileManager.default.contentsOfDirectory(atPath: samples.path).filter {
            $0.hasSuffix(".png") || $0.hasSuffix(".jpg")
        }.sorted()
        #expect(names.count == 7)
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("odam-detect-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let rocket = try Data(contentsOf: samples.appendingPathComponent("rocket.jpg"))
        let fixtures = Self.repository.appendingPathComponent("Tests/VisionTests/Fixtures")
        let bad: [(String, Data?, String)] = [
            ("truncated.jpg", rocket.prefix(rocket.count / 2), "truncated JPEG"),
            ("empty.jpg", Data(), "empty file"),
            ("notes.jpg", Data("meeting notes\n".utf8), "not a JPEG or PNG"),
            ("bomb.png", try Data(contentsOf: fixtures.appendingPathComponent("bomb.png")), "decompression bomb guard"),
        ]
        for (name, data, _) in bad { try data!.write(to: scratch.appendingPathComponent(name)) }
        let good16 = fixtures.appendingPathComponent("rgb16.png").path,
            palette = fixtures.appendingPathComponent("palette_transparent.png").path
        let model = Self.repository.appendingPathComponent("Tests/DetectionTests/Fixtures/fcos_small")
        let images =
            names.map { samples.appendingPathComponent($0).path } + bad.map { scratch.appendingPathComponent($0.0).path } + [
                good16, palette,
            ]
        let cocoPath = scratch.appendingPathComponent("results.json").path
        let result = try Self.run(
            [
                "detect", "--model", model.path + ".json", "--weights", model.path + ".pth", "--score-thresh", "0.3",
                "--threads", "2", "--coco-results", cocoPath,
            ] + images)
        #expect(result.status == 1, "some images failed, so the status is 1")
        let lines = result.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        for path in names.map({ samples.appendingPathComponent($0).path }) + [good16, palette] {
            let mine = lines.filter { $0["image"] as? String == path }
            #expect(
                !mine.isEmpty && mine.allSatisfy { $0["error"] == nil && ($0["box"] as? [Double])?.count == 4 }, "\(path) has detections")
        }
        for (name, _, cause) in bad {
            let path = scratch.appendingPathComponent(name).path
            let errors = lines.filter { $0["image"] as? String == path }.compactMap { $0["error"] as? String }
            #expect(errors.count == 1 && errors[0].contains(cause), "\(name): \(errors)")
            #expect(result.stderr.contains(path), "stderr names \(name)")
        }
        let coco = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cocoPath))) as! [[String: Any]]
        #expect(coco.count == lines.filter { $0["error"] == nil }.count)
    }

    /// Degenerate geometry never prints NaN (invalid JSON), and runtime errors exit 1 with the cause, not a usage text.
    @Test func degenerateImagesAndSettingsGiveFiniteBoxesOrACause() throws {
        let hostile = Self.repository.appendingPathComponent("Tests/HostileInputs/images").path
        let thin = try Self.run(["detect", hostile + "/thin_wide.png", hostile + "/thin_tall.png", hostile + "/one_pixel.png"])
        #expect(thin.status == 0, "\(thin.stderr)")
        for line in thin.stdout.split(separator: "\n") {
            #expect(!line.contains("nan") && (try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "\(line)")
        }
        let sample = Self.repository.appendingPathComponent("Tests/SampleImages/astronaut.png").path
        // The default person detector's square input, and FCOS's two limits.
        for (model, cause) in [
            ([], "ssdlite runs at its fixed 300x300 input"), (["--model", "fcos_synth_odamtrain"], "must both be at least 1 pixel"),
        ] {
            for option in ["--min-size", "--max-size"] {
                let zero = try Self.run(["detect"] + model + [option, "0", sample])
                #expect(zero.status == 1 && zero.stderr.contains(cause), "\(zero.stderr)")
                #expect(!zero.stderr.contains("Usage") && !zero.stdout.contains("nan"), "\(zero.stderr)")
            }
        }
        let same = try Self.run(["detect", "--min-size", "300", sample])
        #expect(same.status == 0 && same.stdout.contains("\"label_name\":\"person\""), "its own size is accepted: \(same.stderr)")
        let missing = try Self.run(["detect", "--model", "fcos_resnet50_fpn", "--weights", "/nonexistent/w.pth", sample])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent/w.pth") && !missing.stderr.contains("Usage"))
    }
}
