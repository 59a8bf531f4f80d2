import Foundation
import Runner

/// The text reports of the runner: every job's progress with the live workers (`odam status`), and a job's summary
/// when it ends (`odam run`).
public enum JobReport {
    /// Every job's progress and the live workers, a line each.
    public static func status(_ jobs: JobStore) throws -> [String] {
        var lines: [String] = []
        let progress = try jobs.progress()
        for job in progress {
            let state = job.isFinished ? "finished" : "\(job.shardsRunning) shards running"
            lines.append(
                "job \(job.job) \(job.name): "
                    + ProgressLine.render(done: job.imagesDone, total: job.imageCount, elapsed: job.elapsedSeconds, workers: nil)
                    + "· shards \(job.shardsCompleted)/\(job.shardCount) done, \(job.shardsFailed) failed · \(state)")
            if job.imagesLost > 0 {
                lines.append("  \(job.imagesLost) images lost with failed shards; the last shard error: \(job.lastShardError ?? "-")")
            }
        }
        if progress.isEmpty { lines.append("no jobs") }
        let workers = try jobs.liveWorkers()
        lines.append("live workers: \(workers.count)")
        for worker in workers {
            lines.append(
                "  worker \(worker.id) on \(worker.host) (pid \(worker.pid), \(worker.threads) threads): \(worker.shardsHeld) shards held, \(worker.heartbeats) heartbeats"
                    + (worker.residentBytes.map { ", memory \(megabytes($0))" } ?? "")
                    + (worker.peakResidentBytes.map { " (peak \(megabytes($0)))" } ?? "")
            )
        }
        return lines
    }

    /// Every job's progress and the live workers as one JSON object (`odam status --json`): `jobs` and `live_workers`,
    /// keys in snake case; a worker's memory is absent until its first heartbeat reports it.
    public static func statusJSON(_ jobs: JobStore) throws -> String {
        struct Status: Encodable {
            var jobs: [JobProgress]
            var liveWorkers: [LiveWorker]
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(Status(jobs: try jobs.progress(), liveWorkers: try jobs.liveWorkers())), as: UTF8.self)
    }

    static func megabytes(_ bytes: Int) -> String { "\(bytes / (1 << 20)) MiB" }

    /// A job's summary after `seconds`: images ok, failed and lost, detections kept, mean step times, the maps'
    /// agreement with plain autograd, the first failures, and queries to go further.
    public static func summary(job: Int, seconds: Double, _ jobs: JobStore) throws -> (lines: [String], imagesLost: Int) {
        let totals = try jobs.summary(job: job)
        let progress = try jobs.progress(job: job)
        func mean(_ value: Double?, _ digits: Int) -> String { value.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        var lines = [
            "job \(job) finished in \(String(format: "%.1f", seconds)) s: \(totals.imagesOK) images ok, \(totals.imagesFailed) failed"
                + (progress.imagesLost > 0 ? ", \(progress.imagesLost) lost with \(progress.shardsFailed) failed shards" : "")
        ]
        if progress.imagesLost > 0 { lines.append("  the last failed shard's error: \(progress.lastShardError ?? "-")") }
        lines.append(
            "  detections kept: \(totals.detectionsKept) (plain NMS would keep \(totals.keptByNMS)) of \(totals.candidates) candidates")
        lines.append(
            "  mean ms per image: forward \(mean(totals.forward, 1)), candidate maps \(mean(totals.candidateMaps, 1)), "
                + "Odam-NMS \(mean(totals.odamNMS, 2)), final maps \(mean(totals.finalMaps, 1)), upload \(mean(totals.upload, 1)), "
                + "database \(mean(totals.database, 2))")
        lines.append(
            "  maps: \(totals.mapPaths.isEmpty ? "-" : totals.mapPaths.joined(separator: ", ")); lowest r of a checked map against plain "
                + "autograd \(mean(totals.minimumMapR, 5)); levels recomputed \(totals.levelsRecomputed) (map_agreement)")
        for failure in try jobs.failures(job: job, limit: 5) { lines.append("  failed: \(failure.path) — \(failure.error ?? "")") }
        lines += [
            "",
            "Query the results (odam sql opens psql on the embedded database):",
            "  SELECT path, rank, label_name, score, energy_in_box, maps_key FROM detection_maps WHERE job_id = \(job) ORDER BY score DESC LIMIT 10;",
            "  SELECT path, total_ms FROM slowest_images WHERE job_id = \(job) LIMIT 5;",
            "  SELECT * FROM failures WHERE job_id = \(job);",
            "Export: odam results \(job) --format coco|jsonl|csv",
        ]
        return (lines, progress.imagesLost)
    }
}
