import ArgumentParser
import Foundation
import Reports
import Runner

extension DetectionExport.Format: ExpressibleByArgument {}

extension Odam {
    struct Results: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a job's detections: COCO results JSON, JSON lines, or CSV.",
            discussion: """
                coco: [{"image_id", "file_name", "category_id", "bbox": [x, y, w, h], "score"}] (image ids are odam's); \
                jsonl and csv: one detection per line with its box, score, label, explanation statistics and maps key.
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "The job's number.") var job: Int
        @Option(help: "coco, jsonl or csv.") var format: DetectionExport.Format = .jsonl
        @Option(help: "Write to this file instead of standard output.") var out: String?

        func run() throws {
            let text = try databaseOptions.session { connectionString -> String in
                let jobs = try JobStore(connecting: connectionString)
                guard try jobs.jobExists(job) else { throw CommandFailure("no job \(job) (odam status lists the jobs)") }
                return try DetectionExport.render(try jobs.detections(job: job), as: format)
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
