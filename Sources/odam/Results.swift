import ArgumentParser
import Foundation
import Postgres
import Runner

extension Odam {
    struct Results: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a job's detections: COCO results JSON, JSON lines, or CSV.",
            discussion: """
                coco: [{"image_id", "file_name", "category_id", "bbox": [x, y, w, h], "score"}] (image ids are odam's); \
                jsonl and csv: one detection per line with its box, score, label, explanation statistics and maps key.
                """)

        enum Format: String, ExpressibleByArgument { case coco, jsonl, csv }

        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "The job's number.") var job: Int
        @Option(help: "coco, jsonl or csv.") var format: Format = .jsonl
        @Option(help: "Write to this file instead of standard output.") var out: String?

        static let columns = [
            "image_id", "path", "rank", "x1", "y1", "x2", "y2", "score", "label", "energy_in_box", "peak_in_box", "compactness",
            "max_correlation", "maps_key",
        ]

        func run() throws {
            try databaseOptions.session { try export(PostgresConnection($0)) }
        }

        func export(_ db: PostgresConnection) throws {
            guard !(try db.query("SELECT 1 FROM jobs WHERE id = $1", [String(job)]).rows.isEmpty) else {
                throw CommandFailure("no job \(job) (odam status lists the jobs)")
            }
            let rows = try db.query(
                "SELECT \(Self.columns.joined(separator: ", ")) FROM detection_maps WHERE job_id = $1 ORDER BY image_id, rank",
                [String(job)]
            ).rows
            var text = ""
            switch format {
            case .coco:
                let entries: [[String: Any]] = rows.map { row in
                    let x1 = Double(row[3]!)!, y1 = Double(row[4]!)!, x2 = Double(row[5]!)!, y2 = Double(row[6]!)!
                    return [
                        "image_id": Int(row[0]!)!, "file_name": row[1]!, "category_id": Int(row[8]!)!, "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": Double(row[7]!)!,
                    ]
                }
                text =
                    String(
                        decoding: try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys, .withoutEscapingSlashes]),
                        as: UTF8.self) + "\n"
            case .jsonl:
                for row in rows {
                    var entry: [String: Any] = [:]
                    for (name, value) in zip(Self.columns, row) {
                        guard let value else { continue }
                        switch name {
                        case "path", "maps_key": entry[name] = value
                        case "peak_in_box": entry[name] = value == "t"
                        case "image_id", "rank", "label": entry[name] = Int(value)!
                        default: entry[name] = Double(value)!
                        }
                    }
                    text +=
                        String(
                            decoding: try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .withoutEscapingSlashes]),
                            as: UTF8.self) + "\n"
                }
            case .csv:
                text = CSV.line(Self.columns) + "\n"
                for row in rows { text += CSV.line(row) + "\n" }
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
