import Foundation
import Postgres
import Processes
import TestSupport
import Testing

/// The README's main job: `odam run DIR` on a fresh folder with no database configured (odam's own PostgreSQL and a
/// local store), then `odam status`, `odam results` in each format and `odam sql`, as users run them.
struct RunCommandTests {
    /// Runs odam in `folder` (its embedded database lives there) with output to a file; the status and the output.
    static func odam(_ arguments: [String], in folder: String) throws -> (status: Int32, output: String) {
        let log = folder + "/command-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = try ChildProcess(
            ["/bin/sh", "-c", "cd \"$1\" && shift && unset ODAM_DATABASE_URL && exec \"$@\"", "sh", folder, RunnerCluster.odam] + arguments,
            output: log
        ).wait()
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    @Test func theMainJobRunsOnTheEmbeddedDefaults() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odam-run-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/photos", withIntermediateDirectories: true)
        defer {
            try? EmbeddedPostgres(dataDirectory: folder + "/.odam/postgres").stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
        for name in ["chelsea.png", "rocket.jpg", "coffee.png"] {
            try FileManager.default.copyItem(atPath: sampleImagePath(name), toPath: folder + "/photos/" + name)
        }
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: folder + "/photos/broken.png"))
        let run = try Self.odam(["run", "photos", "--workers", "2", "--migrations", RunnerCluster.migrations], in: folder)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("odam's embedded PostgreSQL") && run.output.contains("3 images ok, 1 failed"), "\(run.output)")
        #expect(run.output.contains("failed: broken.png") && run.output.contains("SELECT path, rank"), "\(run.output)")
        #expect(
            run.output.contains("maps: exact; lowest r of a checked map against plain autograd")
                && run.output.contains("levels recomputed 0"),
            "\(run.output)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/.odam/postgres/postmaster.pid"), "odam run stops the server it started")
        let objects = try FileManager.default.subpathsOfDirectory(atPath: folder + "/.odam/objects").filter {
            $0.hasSuffix("maps.safetensors")
        }
        #expect(objects.count == 3)

        // The results, after the fact: the embedded server starts again on demand.
        let status = try Self.odam(["status"], in: folder)
        #expect(status.status == 0 && status.output.contains("job 1 photos") && status.output.contains("4/4 images"), "\(status.output)")
        let jsonl = try Self.odam(["results", "1", "--format", "jsonl"], in: folder)
        let lines = jsonl.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(jsonl.status == 0 && !lines.isEmpty, "\(jsonl.output)")
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["path"] is String && first["score"] is Double && first["maps_key"] is String && first["peak_in_box"] is Bool)
        let coco = try Self.odam(["results", "1", "--format", "coco", "--out", folder + "/coco.json"], in: folder)
        #expect(coco.status == 0)
        let entries = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/coco.json"))) as? [[String: Any]])
        #expect(entries.count == lines.count && (entries.first?["bbox"] as? [Double])?.count == 4)
        let csv = try Self.odam(["results", "1", "--format", "csv"], in: folder)
        #expect(csv.output.hasPrefix("image_id,path,rank,") && csv.output.split(separator: "\n").count == lines.count + 1)
        let sql = try Self.odam(["sql", "-At", "-c", "SELECT count(*) FROM detections"], in: folder)
        #expect(sql.status == 0 && sql.output.contains(String(lines.count)), "\(sql.output)")
        #expect(
            !FileManager.default.fileExists(atPath: folder + "/.odam/postgres/postmaster.pid"),
            "status, results and sql stop the server they started")
    }
}
