import Foundation
import Logging
import Processes
import Testing

/// The log lines of odam's processes: text with time, level, label and metadata, or one JSON object per line.
struct ProcessLogTests {
    static let time = Date(timeIntervalSince1970: 1_796_074_800.25)

    @Test func textLinesCarryTimeLevelLabelAndMetadata() {
        let handler = ProcessLogHandler(label: "odam.worker", format: .text, level: .info)
        let line = handler.line(level: .warning, message: "lease lost", metadata: ["shard": "12", "job": "3"], time: Self.time)
        #expect(line == "2026-11-30T21:40:00.250Z warning odam.worker: lease lost job=3 shard=12")
    }

    @Test func jsonLinesAreObjectsWithTheMetadataAsFields() throws {
        var handler = ProcessLogHandler(label: "odam.worker", format: .json, level: .info)
        handler[metadataKey: "worker"] = "5"
        let line = handler.line(
            level: .error, message: "a \"quoted\"\nmessage", metadata: handler.metadata.merging(["shard": "9"]) { $1 }, time: Self.time)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2026-11-30T21:40:00.250Z" && object["level"] as? String == "error")
        #expect(
            object["message"] as? String == "a \"quoted\"\nmessage" && object["worker"] as? String == "5"
                && object["shard"] as? String == "9")
    }

    @Test func aBadSettingIsNamed() {
        #expect(throws: ProcessLogError.self) { try ProcessLog.bootstrap(environment: ["ODAM_LOG_FORMAT": "xml"]) }
        #expect(throws: ProcessLogError.self) { try ProcessLog.bootstrap(environment: ["ODAM_LOG_LEVEL": "loud"]) }
    }
}
