import Foundation
import Reports
import Runner
import Testing

/// Exports of detections, without a database: the formats' shapes and CSV that spreadsheets cannot run.
struct DetectionExportTests {
    @Test(arguments: [
        ("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""), ("+1+2", "'+1+2"), ("-0.25", "-0.25"),
        ("@SUM(A1)", "'@SUM(A1)"), ("plain.png", "plain.png"), ("a,b", "\"a,b\""), ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
    ])
    func csvCellsNeverRunAsFormulas(value: String, expected: String) {
        #expect(CSV.cell(value) == expected)
    }

    static let detections = [
        ExportedDetection(
            imageID: 7, path: "a/b,c.png", rank: 0, x1: 10, y1: 20, x2: 30.5, y2: 60, score: 0.875, label: 1, energyInBox: 0.5,
            peakInBox: true, compactness: 0.25, maxCorrelation: nil, mapsKey: "job1/7-b_c.png/maps.safetensors", labelName: "person"),
        ExportedDetection(
            imageID: 8, path: "=cmd.png", rank: 1, x1: 0, y1: 0, x2: 1, y2: 2, score: 0.5, label: 3, energyInBox: nil, peakInBox: nil,
            compactness: nil, maxCorrelation: 0.75, mapsKey: nil),
    ]

    @Test func cocoHasXYWHBoxesAndCategories() throws {
        let text = try DetectionExport.render(Self.detections, as: .coco).text
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        #expect(entries.count == 2)
        #expect(entries[0]["bbox"] as? [Double] == [10, 20, 20.5, 40] && entries[0]["category_id"] as? Int == 1)
        #expect(entries[1]["image_id"] as? Int == 8 && entries[1]["score"] as? Double == 0.5)
    }

    @Test func jsonLinesLeaveMissingValuesOut() throws {
        let lines = try DetectionExport.render(Self.detections, as: .jsonl).text.split(separator: "\n")
        #expect(lines.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(
            first["peak_in_box"] as? Bool == true && first["max_correlation"] == nil && first["path"] as? String == "a/b,c.png"
                && first["label_name"] as? String == "person")
        let second = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(second["energy_in_box"] == nil && second["max_correlation"] as? Double == 0.75 && second.count == 10)
    }

    @Test func csvHasAHeaderAndQuotedCells() throws {
        let lines = try DetectionExport.render(Self.detections, as: .csv).text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == Substring(DetectionExport.columns.joined(separator: ",")))
        #expect(lines[1].hasPrefix("7,\"a/b,c.png\",0,10.0,20.0,30.5,60.0,0.875,1,person,0.5,true,0.25,,job1/"))
        #expect(lines[2].hasPrefix("8,'=cmd.png,1,") && lines[2].hasSuffix(",0.75,"))
        #expect(lines.count == 4 && lines[3].isEmpty)
    }
}
