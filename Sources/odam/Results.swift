import ArgumentParser
import Detection
import Foundation
import Logging
import Reports
import Runner

extension DetectionExport.Format: ExpressibleByArgument {}

extension Odam {
    struct Results: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a job's detections: COCO results JSON, JSON lines, or CSV.",
            discussion: """
                coco: [{"image_id", "file_name", "category_id", "bbox": [x, y, w, h], "score"}]. With --annotations GT.json \
                the ids are the ground truth's: an image is found by its path relative to the enqueued folder (or the \
                longest tail of it) among the file's images[].file_name, a label by its category id or name, so that \
                pycocotools (or odam eval coco) evaluates the file against GT.json directly; images GT.json does not list \
                are left out and named on standard error. Without, image ids are odam's (stable for the job) and \
                categories the labels. jsonl and csv: one detection per line with its box, score, label, label name, \
                explanation statistics and maps key.
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "The job's number.") var job: Int
        @Option(help: "coco, jsonl or csv.") var format: DetectionExport.Format = .jsonl
        @Option(help: "Write to this file instead of standard output.") var out: String?
        @Option(help: "coco only: take image and category ids from this COCO annotation file.") var annotations: String?

        func run() throws {
            if annotations != nil, format != .coco { throw ValidationError("--annotations joins COCO results: use --format coco") }
            let groundTruth = try annotations.map { try COCOAnnotations(contentsOf: $0) }
            let (text, unmatched) = try databaseOptions.session { connectionString in
                let jobs = try JobStore(connecting: connectionString)
                guard try jobs.jobExists(job) else { throw CommandFailure("no job \(job) (odam status lists the jobs)") }
                // Paths are matched under the job's folder or URL prefix (a staged source keeps only the relative path).
                let source = try jobs.job(job).source
                return try DetectionExport.render(
                    try jobs.detections(job: job), as: format, annotations: groundTruth, source: source.hasPrefix("store:") ? "" : source)
            }
            if let annotations, !unmatched.isEmpty {
                let listed = unmatched.prefix(5).joined(separator: ", ") + (unmatched.count > 5 ? ", …" : "")
                Log.results.warning("\(unmatched.count) images with detections are not in \(annotations), left out: \(listed)")
            }
            if let out {
                guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else {
                    throw CommandFailure("\(out): cannot write")
                }
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }
}
