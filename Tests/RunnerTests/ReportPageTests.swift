import Foundation
import Postgres
import Processes
import ServiceTestSupport
import TestSupport
import Testing
import Vision

/// The job report `odam run` writes, opened in a real headless browser (Chromium from Debian's packages): its
/// content after the page's script ran, a sorted and filtered view from the address, and a screenshot that is not blank.
struct ReportPageTests {
    /// Chromium's path (Tools/setup --tests installs Debian's `chromium`).
    static func chromium() throws -> String {
        let candidates = ((ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/bin").split(separator: ":").flatMap { folder in
            ["chromium", "chromium-browser", "google-chrome"].map { "\(folder)/\($0)" }
        }
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestDependencyError("no Chromium in PATH: Tools/setup --tests installs Debian's chromium")
        }
        return path
    }

    /// Runs headless Chromium on `url` with `arguments`; what it wrote to standard output.
    static func browse(_ url: String, _ arguments: [String], scratch: String) throws -> String {
        let log = scratch + "/chromium-\(UInt32.random(in: 0...UInt32.max)).out"
        let status = try ChildProcess.run(
            [try chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(scratch)/profile"]
                + arguments + [url],
            environment: ["HOME": scratch], output: log)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status == 0, "chromium exited \(status): \(output.suffix(2000))")
        return output
    }

    /// The rows of the detections table in the DOM: their attributes, in order.
    static func rows(_ dom: String) -> [[String: String]] {
        let pattern = try! NSRegularExpression(pattern: "<tr (data-class=[^>]*)>")
        let attribute = try! NSRegularExpression(pattern: "([a-z-]+)=\"([^\"]*)\"")
        return pattern.matches(in: dom, range: NSRange(dom.startIndex..., in: dom)).map { match in
            let text = String(dom[Range(match.range(at: 1), in: dom)!])
            var values: [String: String] = text.contains(" hidden") ? ["hidden": "yes"] : [:]
            for pair in attribute.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                values[String(text[Range(pair.range(at: 1), in: text)!])] = String(text[Range(pair.range(at: 2), in: text)!])
            }
            return values
        }
    }

    @Test func theRunsReportOpensInABrowserSortsFiltersAndIsNotBlank() throws {
        _ = try Self.chromium()
        let scratch = try RunFolder("report", photos: ["astronaut.png", "rocket.jpg"])
        defer { scratch.remove() }
        let folder = scratch.path
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: folder + "/photos/broken <b>.png"))
        // The synthetic-scene FCOS finds several classes on these photos (shapes, not objects), which the page's class
        // filter needs; the person detector finds one person.
        try "model:\n  spec: fcos_synth_odamtrain\n".write(toFile: folder + "/job.yaml", atomically: true, encoding: .utf8)
        let run = try OdamBinary.run(
            ["run", "photos", "--job", "job.yaml", "--workers", "1", "--migrations", Repository.migrations], in: folder)
        #expect(run.status == 0, "\(run.output)")
        let page = folder + "/.odam/reports/job1/index.html"
        #expect(run.output.contains("Report: \(page)"), "the run's summary links the report: \(run.output)")
        let kept = try OdamBinary.run(["results", "1", "--format", "jsonl"], in: folder).stdout.split(separator: "\n").count
        #expect(kept >= 5)

        // The page as the browser has it after its script ran.
        let dom = try Self.browse("file://" + page, ["--dump-dom"], scratch: folder)
        #expect(dom.contains("<h1>odam job 1: photos</h1>") && dom.contains("<dt>failed</dt><dd>1</dd>"), "\(dom.prefix(3000))")
        #expect(dom.contains("broken &lt;b&gt;.png") && !dom.contains("broken <b>.png"), "a failure is listed, its name escaped")
        #expect(dom.contains("<svg id=\"timings\"") && dom.contains("final maps"))
        let rows = Self.rows(dom)
        #expect(rows.count == kept && rows.allSatisfy { $0["hidden"] == nil })
        let scores = rows.compactMap { $0["data-score"].flatMap(Double.init) }
        #expect(scores == scores.sorted(by: >), "highest scores first")
        let thumbnails = dom.components(separatedBy: "<img class=\"thumb\"").count - 1
        #expect(thumbnails == kept, "every detection of a small job has a thumbnail")
        let thumbnail = try ImageCodec().decode(contentsOf: folder + "/.odam/reports/job1/thumbs/1-0.png")
        #expect(max(thumbnail.width, thumbnail.height) == 320)

        // A view from the address: one class, sorted by energy in box, lowest first.
        let classes = Set(rows.compactMap { $0["data-class"] })
        let chosen = try #require(classes.sorted().first)
        let view = try Self.browse("file://\(page)#sort=energy:asc&class=\(chosen)", ["--dump-dom"], scratch: folder)
        let viewed = Self.rows(view)
        let visible = viewed.filter { $0["hidden"] == nil }
        #expect(!visible.isEmpty && visible.allSatisfy { $0["data-class"] == chosen })
        #expect(viewed.count - visible.count == rows.filter { $0["data-class"] != chosen }.count)
        let energies = visible.compactMap { $0["data-energy"].flatMap(Double.init) }
        #expect(energies == energies.sorted() && energies.count == visible.count)
        #expect(view.contains("<span id=\"shown\">\(visible.count)</span>"))

        // A screenshot, kept for the closing note and CI: a page with text, a plot and thumbnails, not a blank one.
        let screenshot = Repository.path(".build/test-artifacts/report-screenshot.png")
        try FileManager.default.createDirectory(atPath: Repository.path(".build/test-artifacts"), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: screenshot)
        _ = try Self.browse("file://" + page, ["--window-size=1280,1600", "--screenshot=\(screenshot)"], scratch: folder)
        let image = try ImageCodec().decode(contentsOf: screenshot)
        #expect(image.width == 1280 && image.height == 1600)
        var colors = Set<Int>()
        var inked = 0
        for index in stride(from: 0, to: image.pixels.count, by: 3) {
            let (r, g, b) = (Int(image.pixels[index]), Int(image.pixels[index + 1]), Int(image.pixels[index + 2]))
            colors.insert(r << 16 | g << 8 | b)
            if r + g + b < 600 { inked += 1 }
        }
        let share = Double(inked) / Double(image.width * image.height)
        #expect(colors.count > 500 && share > 0.05 && share < 0.95, "\(colors.count) colors, \(share) of the pixels not white")
    }
}
