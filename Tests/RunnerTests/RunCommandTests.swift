import Files
import Foundation
import Postgres
import Processes
import ServiceTestSupport
import TestSupport
import Testing

/// The README's main job: `odam run DIR` on a fresh folder with no database configured (odam's own PostgreSQL and a
/// local store), then `odam status`, `odam results` in each format and `odam sql`, as users run them.
struct RunCommandTests {
    /// Runs odam in `folder` (its embedded database lives there) with output to a file; the status and the output.
    static func odam(_ arguments: [String], in folder: String, environment: [String: String] = [:]) throws -> (
        status: Int32, output: String
    ) {
        let run = try OdamBinary.run(arguments, in: folder, environment: environment)
        return (run.status, run.output)
    }

    /// Starts odam in `folder` without a configured database (so on its embedded one), output to `log`.
    static func start(_ arguments: [String], in folder: String, environment: [String: String] = [:], log: String) throws
        -> ChildProcess
    {
        try OdamBinary.start(arguments, in: folder, environment: environment, log: log)
    }

    @Test func theMainJobRunsOnTheEmbeddedDefaults() throws {
        let scratch = try RunFolder("run", photos: ["astronaut.png", "camera.png", "chelsea.png"])
        defer { scratch.remove() }
        let folder = scratch.path
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
        let statusJSON = try Self.odam(["status", "--json"], in: folder)
        let statusObject = try #require(
            try JSONSerialization.jsonObject(with: Data(statusJSON.output.utf8)) as? [String: Any], "\(statusJSON.output)")
        let jobsJSON = try #require(statusObject["jobs"] as? [[String: Any]])
        #expect(jobsJSON.count == 1 && jobsJSON[0]["job"] as? Int == 1 && jobsJSON[0]["images_done"] as? Int == 4)
        #expect(jobsJSON[0]["is_finished"] as? Bool == true && (statusObject["live_workers"] as? [Any])?.isEmpty == true)
        let jsonl = try Self.odam(["results", "1", "--format", "jsonl"], in: folder)
        let lines = jsonl.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(jsonl.status == 0 && !lines.isEmpty, "\(jsonl.output)")
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(
            first["path"] is String && first["label_name"] is String && first["score"] is Double && first["maps_key"] is String
                && first["peak_in_box"] is Bool)
        let coco = try Self.odam(["results", "1", "--format", "coco", "--out", folder + "/coco.json"], in: folder)
        #expect(coco.status == 0)
        let entries = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/coco.json"))) as? [[String: Any]])
        #expect(entries.count == lines.count && (entries.first?["bbox"] as? [Double])?.count == 4)
        let csv = try Self.odam(["results", "1", "--format", "csv"], in: folder)
        #expect(csv.output.hasPrefix("image_id,path,rank,") && csv.output.split(separator: "\n").count == lines.count + 1)
        let sql = try Self.odam(["sql", "-At", "-c", "SELECT count(*) FROM detections"], in: folder)
        #expect(sql.status == 0 && sql.output.contains(String(lines.count)), "\(sql.output)")
        // Memory in the product's reports: every ok image has the worker's resident memory after it and its tensor
        // working set, and every worker that heartbeat reported its resident memory.
        let memory = try Self.odam(
            [
                "sql", "-At", "-F", "|", "-c",
                """
                SELECT (SELECT count(*) FROM image_results WHERE status = 'ok' AND worker_rss_bytes > 10000000
                        AND tensor_peak_bytes > 1000000 AND tensor_peak_bytes < worker_rss_bytes),
                    (SELECT count(*) FROM workers WHERE rss_bytes > 10000000 AND peak_rss_bytes >= rss_bytes)
                """,
            ], in: folder)
        #expect(memory.status == 0 && memory.output.hasPrefix("3|2"), "\(memory.output)")
        #expect(
            !FileManager.default.fileExists(atPath: folder + "/.odam/postgres/postmaster.pid"),
            "status, results and sql stop the server they started")
    }

    /// Every hostile image, a FIFO, a link out of the folder and a name that is not UTF-8, among good photos: the job
    /// completes, every good image ok, every bad one failed with its cause, the FIFO and the link reported unread.
    @Test func aFolderOfHostileFilesRunsToTheEnd() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odam-hostile-run-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
        defer {
            try? EmbeddedPostgres(dataDirectory: folder + "/.odam/postgres").stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
        let cases = HostileInput.cases(.image)
        #expect(cases.count >= 10)
        for input in cases {
            try FileManager.default.copyItem(atPath: input.path, toPath: folder + "/data/" + (input.file as NSString).lastPathComponent)
        }
        for name in ["astronaut.png", "rocket.jpg"] {
            try FileManager.default.copyItem(atPath: sampleImagePath(name), toPath: folder + "/data/" + name)
        }
        #expect(mkfifo(folder + "/data/fifo.png", 0o600) == 0)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: folder + "/credentials"))
        try FileManager.default.createSymbolicLink(atPath: folder + "/data/innocent.png", withDestinationPath: folder + "/credentials")
        let photo = try Data(contentsOf: URL(fileURLWithPath: sampleImagePath("coffee.png")))
        let rawName = RawPath.string(Array((folder + "/data/caf").utf8) + [0xE9] + Array(".png".utf8))
        let descriptor = RawPath.withCString(rawName) { open($0, O_WRONLY | O_CREAT, 0o644) }
        #expect(descriptor >= 0)
        _ = photo.withUnsafeBytes { write(descriptor, $0.baseAddress, photo.count) }
        close(descriptor)

        let run = try Self.odam(["run", "data", "--workers", "2", "--migrations", RunnerCluster.migrations], in: folder)
        let good = cases.filter { $0.expect == .ok }.count + 3
        let bad = cases.filter { $0.expect == .error }.count
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("\(good) images ok, \(bad) failed"), "\(run.output)")
        #expect(run.output.contains("fifo.png: a FIFO") && run.output.contains("innocent.png: a symbolic link that leads outside"))
        let failures = try Self.odam(["sql", "-At", "-F", "|", "-c", "SELECT path, error FROM failures ORDER BY path"], in: folder)
        let rows = failures.output.split(separator: "\n").map { $0.split(separator: "|", maxSplits: 1).map(String.init) }
        for input in cases where input.expect == .error {
            let name = (input.file as NSString).lastPathComponent
            let row = rows.first { $0.first == name }
            #expect(row != nil && row![1].contains(name) && row![1].contains(input.error), "\(name): \(String(describing: row))")
        }
        let names = try Self.odam(["sql", "-At", "-c", "SELECT count(*) FROM images WHERE path LIKE 'caf%'"], in: folder)
        #expect(names.output.contains("1"), "the name that is not UTF-8 was walked")
    }

    /// `odam run` killed with SIGKILL: its coordinator and workers follow it (PR_SET_PDEATHSIG), and running it again
    /// on the folder resumes the job instead of enqueuing it twice; every image is processed exactly once.
    @Test func aKilledRunLeavesNoOrphansAndResumes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odam-resume-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/photos", withIntermediateDirectories: true)
        let server = try EmbeddedPostgres(dataDirectory: folder + "/.odam/postgres")
        defer {
            try? server.stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
        let names = ["astronaut.png", "rocket.jpg", "coffee.png", "chelsea.png", "camera.png", "coins.png"]
        for name in names { try FileManager.default.copyItem(atPath: sampleImagePath(name), toPath: folder + "/photos/" + name) }
        let log = folder + "/first.log"
        let first = try Self.start(
            ["run", "photos", "--workers", "1", "--shard-size", "1", "--migrations", RunnerCluster.migrations], in: folder, log: log)
        // Wait until the first image is recorded, then kill the parent alone.
        var done = 0
        for _ in 0..<600 where done == 0 {
            usleep(100_000)
            done =
                (try? PostgresConnection(server.connectionString()).query("SELECT count(*) FROM image_results").rows[0][0].flatMap {
                    Int($0)
                }) ?? 0
        }
        #expect(done > 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let children = try PostgresConnection(server.connectionString()).query("SELECT pid FROM workers").rows.compactMap { Int32($0[0]!) }
        first.send(SIGKILL)
        _ = first.wait()
        var alive = children
        for _ in 0..<200 where !alive.isEmpty {
            usleep(100_000)
            alive = alive.filter { kill($0, 0) == 0 }
        }
        #expect(!children.isEmpty && alive.isEmpty, "workers \(alive) outlived their killed odam run")

        let second = try Self.odam(["run", "photos", "--workers", "1", "--migrations", RunnerCluster.migrations], in: folder)
        #expect(second.status == 0 && second.output.contains("job 1: resuming"), "\(second.output)")
        let counts = try Self.odam(
            ["sql", "-At", "-c", "SELECT (SELECT count(*) FROM jobs), count(*), count(DISTINCT image_id) FROM image_results"], in: folder)
        #expect(counts.output.contains("1|\(names.count)|\(names.count)"), "\(counts.output)")
    }

    /// Two `odam run` started together in one folder share the embedded server (neither stops it under the other)
    /// and one job: the second resumes the job the first enqueued, and every image is processed once.
    @Test func twoRunsInOneFolderShareTheServerAndTheJob() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odam-two-runs-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/photos", withIntermediateDirectories: true)
        defer {
            try? EmbeddedPostgres(dataDirectory: folder + "/.odam/postgres").stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
        let names = ["astronaut.png", "rocket.jpg", "coffee.png", "chelsea.png"]
        for name in names { try FileManager.default.copyItem(atPath: sampleImagePath(name), toPath: folder + "/photos/" + name) }
        let arguments = ["run", "photos", "--workers", "1", "--shard-size", "1", "--migrations", RunnerCluster.migrations]
        let runs = try (0..<2).map { try Self.start(arguments, in: folder, log: folder + "/run-\($0).log") }
        let statuses = runs.map { $0.wait() }
        let logs = (0..<2).map { (try? String(contentsOfFile: folder + "/run-\($0).log", encoding: .utf8)) ?? "" }
        #expect(statuses == [0, 0], "\(logs)")
        #expect(logs.filter { $0.contains("resuming") }.count == 1, "\(logs)")
        let counts = try Self.odam(
            ["sql", "-At", "-c", "SELECT (SELECT count(*) FROM jobs), count(*), count(DISTINCT image_id) FROM image_results"], in: folder)
        #expect(counts.output.contains("1|\(names.count)|\(names.count)"), "\(counts.output)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/.odam/postgres/postmaster.pid"), "the last run stops the server")
    }

    /// A job whose model cannot load or whose store cannot be written fails at enqueue, naming the part, and exits 1.
    @Test func aJobThatCannotRunFailsAtEnqueue() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odam-preflight-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/photos", withIntermediateDirectories: true)
        defer {
            try? EmbeddedPostgres(dataDirectory: folder + "/.odam/postgres").stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
        try FileManager.default.copyItem(atPath: sampleImagePath("coffee.png"), toPath: folder + "/photos/coffee.png")
        try "model:\n  spec: fcos_resnet50_fpn\n  weights: /nonexistent/w.pth\n".write(
            toFile: folder + "/weights.yaml", atomically: true, encoding: .utf8)
        let port = try freeLoopbackPorts(1, range: 40_000..<50_000)[0]
        try "output:\n  store: s3://bucket/x\n  endpoint: http://127.0.0.1:\(port)\n".write(
            toFile: folder + "/store.yaml", atomically: true, encoding: .utf8)
        for (spec, cause) in [
            ("weights.yaml", "the job's model cannot be loaded: /nonexistent/w.pth"), ("store.yaml", "cannot be written"),
        ] {
            let run = try Self.odam(
                ["run", "photos", "--job", spec, "--migrations", RunnerCluster.migrations], in: folder,
                environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"])
            #expect(run.status == 1 && run.output.contains(cause) && !run.output.contains("Usage"), "\(run.output)")
        }
        let jobs = try Self.odam(["sql", "-At", "-c", "SELECT count(*) FROM jobs"], in: folder)
        #expect(jobs.output.split(separator: "\n").contains("0"), "no job was recorded: \(jobs.output)")
    }
}
