import Foundation
import Runner

/// `odam report`: a job's results as a static HTML page that opens from disk (no server, no network): the summary,
/// mean time per step as a bar plot, every detection in a table sortable by score, energy in box, max correlation and
/// class and filterable by class, thumbnails of the combined map over the photo for the best and the most surprising
/// detections, and the failures with their causes.
public struct JobPage {
    /// Detections with a thumbnail at most (see ``picks(_:limit:)``).
    public var thumbnails = 60
    /// The longer side of a thumbnail in pixels.
    public var thumbnailSide = 320
    /// Rows of the detections table at most, highest scores first (every detection stays in SQL).
    public var rows = 5000

    public init() {}

    /// Writes `folder/index.html` and its thumbnails; the page's path and a line per thumbnail that could not be drawn.
    public func write(job: Int, jobs: JobStore, to folder: String) throws -> (page: String, problems: [String]) {
        let stored = try jobs.job(job)
        let progress = try jobs.progress(job: job)
        let summary = try jobs.summary(job: job)
        let failures = try jobs.failures(job: job, limit: 1000)
        let detections = try jobs.detections(job: job).sorted { $0.score > $1.score }
        try FileManager.default.createDirectory(atPath: folder + "/thumbs", withIntermediateDirectories: true)
        let store = try JobResources.store(for: stored.spec.output)
        let chosen = Self.picks(detections, limit: thumbnails)
        let (files, problems) = Self.drawThumbnails(
            detections, chosen: chosen, source: JobResources.ImageSource(stored.source, store: store), store: store, folder: folder,
            side: thumbnailSide)
        let html = Self.html(
            job: stored, progress: progress, summary: summary, failures: failures, detections: Array(detections.prefix(rows)),
            totalDetections: detections.count, thumbnails: files, picks: chosen, problems: problems)
        let page = folder + "/index.html"
        guard FileManager.default.createFile(atPath: page, contents: Data(html.utf8)) else {
            throw RunnerError("\(page): cannot write (folder missing, read-only or disk full?)")
        }
        let lines = problems.sorted { $0.key < $1.key }.map { index, problem in
            "\(detections[index].path) detection \(detections[index].rank): no thumbnail: \(problem)"
        }
        return (page, lines)
    }

    /// Text made safe inside HTML elements and attribute values.
    package static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func number(_ value: Double?, _ digits: Int) -> String { value.map { String(format: "%.\(digits)f", $0) } ?? "–" }

    /// Mean milliseconds per step as horizontal bars (inline SVG).
    static func timingPlot(_ summary: JobSummary) -> String {
        let steps: [(String, Double?)] = [
            ("forward", summary.forward), ("candidate maps", summary.candidateMaps), ("Odam-NMS", summary.odamNMS),
            ("final maps", summary.finalMaps), ("upload", summary.upload), ("database", summary.database),
        ]
        let longest = max(steps.compactMap(\.1).max() ?? 1, 1e-9)
        var svg =
            "<svg id=\"timings\" width=\"560\" height=\"\(steps.count * 26 + 8)\" role=\"img\" aria-label=\"mean milliseconds per image by step\">"
        for (row, (name, value)) in steps.enumerated() {
            let y = 4 + row * 26
            let width = Int(((value ?? 0) / longest * 300).rounded())
            svg +=
                "<text x=\"0\" y=\"\(y + 15)\" font-size=\"13\">\(escaped(name))</text>"
                + "<rect x=\"120\" y=\"\(y)\" width=\"\(max(width, 1))\" height=\"20\" fill=\"#3b7dd8\"></rect>"
                + "<text x=\"\(128 + width)\" y=\"\(y + 15)\" font-size=\"13\">\(number(value, 1)) ms</text>"
        }
        return svg + "</svg>"
    }
}
