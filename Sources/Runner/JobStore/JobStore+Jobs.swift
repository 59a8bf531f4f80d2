import Detection
import Foundation
import Postgres

/// Recording jobs and reading them back.
extension JobStore {
    /// Records the job, its shards and its images (by COPY) in one transaction, then wakes the workers; the job's id.
    public func enqueue(_ job: NewJob) throws -> Int {
        guard job.shardSize > 0 else { throw RunnerError("the shard size must be positive") }
        let specJSON = try job.spec.json()
        return try transaction {
            let jobID: Int = try connection.query(
                """
                INSERT INTO jobs (name, spec, source, image_count, shard_count)
                VALUES (\(job.name), \(specJSON)::jsonb, \(job.source), \(job.images.count), \(job.shardCount)) RETURNING id
                """, purpose: "recording job \(job.name)"
            ).records[0].decode("id")
            let shards: [Int] = try connection.query(
                "INSERT INTO shards (job_id) SELECT \(jobID)::bigint FROM generate_series(1, \(job.shardCount)::int) RETURNING id",
                purpose: "recording the shards of job \(jobID)"
            ).records.map { try $0.decode("id") }.sorted()
            try connection.copyIn(
                "COPY images (job_id, shard_id, path, position) FROM STDIN",
                rows: job.images.enumerated().map { position, path in [jobID, shards[position / job.shardSize], path, position] })
            try notifyWorkers(String(jobID))
            return jobID
        }
    }

    /// A recorded job, its spec decoded; throws naming the job when there is none.
    public func job(_ id: Int) throws -> StoredJob {
        guard
            let row = try connection.query(
                "SELECT name, spec::text AS spec, source FROM jobs WHERE id = \(id)", purpose: "reading job \(id)"
            )
            .records.first
        else { throw RunnerError("no job \(id)") }
        return StoredJob(
            id: id, name: try row.decode("name"), spec: try JobSpec.stored(try row.decode("spec"), job: id),
            source: try row.decode("source"))
    }

    /// Whether a job with this id exists.
    public func jobExists(_ id: Int) throws -> Bool {
        try connection.query("SELECT EXISTS (SELECT 1 FROM jobs WHERE id = \(id)) AS found", purpose: "looking up job \(id)")
            .records[0].decode("found")
    }

    /// The newest unfinished job over `source` with `spec` (what `odam run` resumes), with its progress.
    public func unfinishedJob(source: String, spec: JobSpec) throws -> JobProgress? {
        try connection.query(
            """
            SELECT \(fragment: Self.progressColumns) FROM job_progress p JOIN jobs j ON j.id = p.job_id
            WHERE j.source = \(source) AND j.spec = \(try spec.json())::jsonb AND j.finished_at IS NULL ORDER BY j.id DESC LIMIT 1
            """, purpose: "looking for an unfinished job over \(source)"
        ).records.first.map(JobProgress.init)
    }

    /// Deletes the jobs named `name` with everything recorded for them (benchmark scratch jobs).
    public func deleteJobs(named name: String) throws {
        try connection.query("DELETE FROM jobs WHERE name = \(name)", purpose: "deleting the jobs named \(name)")
    }
}

/// The coordinator's round.
extension JobStore {
    /// Marks jobs whose shards are all done as finished; their ids.
    public func finishJobs() throws -> [Int] {
        try connection.query(
            """
            UPDATE jobs j SET finished_at = now() WHERE finished_at IS NULL AND NOT EXISTS (
                SELECT 1 FROM shards s WHERE s.job_id = j.id AND s.state NOT IN ('completed', 'failed', 'cancelled'))
            RETURNING id
            """, purpose: "finishing jobs"
        ).records.map { try $0.decode("id") }
    }

    /// Refreshes the per-job rollups (images ok and failed, detections) of unfinished and newly finished jobs.
    public func refreshRollups() throws {
        try connection.query(
            """
            UPDATE jobs j SET images_ok = r.ok, images_failed = r.failed, detections = r.detections, rolled_up_at = now()
            FROM (SELECT i.job_id, count(*) FILTER (WHERE r.status = 'ok') AS ok, count(*) FILTER (WHERE r.status = 'failed') AS failed,
                    coalesce(sum(r.kept), 0) AS detections
                  FROM image_results r JOIN images i ON i.id = r.image_id
                  WHERE i.job_id IN (SELECT id FROM jobs WHERE finished_at IS NULL OR rolled_up_at IS NULL OR rolled_up_at < finished_at)
                  GROUP BY i.job_id) r
            WHERE j.id = r.job_id
            """, purpose: "refreshing job rollups")
    }

    /// Whether every job has finished.
    public func allJobsFinished() throws -> Bool {
        try connection.query(
            "SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE finished_at IS NULL) AS done", purpose: "checking for unfinished jobs"
        )
        .records[0].decode("done")
    }
}

/// Progress and the workers.
extension JobStore {
    static let progressColumns: PostgresQuery = """
        p.job_id, p.name, p.image_count, p.images_done, p.shard_count, p.shards_completed, p.shards_running, p.shards_failed,
        p.finished_at IS NOT NULL AS finished, extract(epoch FROM coalesce(p.finished_at, now()) - p.created_at)::float8 AS elapsed_seconds,
        p.images_lost, p.last_shard_error
        """

    /// One job's progress; throws naming the job when there is none.
    public func progress(job: Int) throws -> JobProgress {
        guard
            let row = try connection.query(
                "SELECT \(fragment: Self.progressColumns) FROM job_progress p WHERE p.job_id = \(job)",
                purpose: "reading job \(job)'s progress"
            ).records.first
        else { throw RunnerError("no job \(job)") }
        return try JobProgress(row)
    }

    /// Every job's progress, oldest first.
    public func progress() throws -> [JobProgress] {
        try connection.query(
            "SELECT \(fragment: Self.progressColumns) FROM job_progress p ORDER BY p.job_id", purpose: "reading the jobs' progress"
        )
        .records.map(JobProgress.init)
    }

    /// Workers that sent a heartbeat lately, with the shards they hold.
    public func liveWorkers() throws -> [LiveWorker] {
        try connection.query(
            "SELECT id, host, pid, threads, shards_held, heartbeats, rss_bytes, peak_rss_bytes FROM live_workers ORDER BY id",
            purpose: "reading the live workers"
        ).records.map {
            LiveWorker(
                id: try $0.decode("id"), host: try $0.decode("host"), pid: try $0.decode("pid"), threads: try $0.decode("threads"),
                shardsHeld: try $0.decode("shards_held"), heartbeats: try $0.decode("heartbeats"),
                residentBytes: try $0.decodeIfPresent("rss_bytes"), peakResidentBytes: try $0.decodeIfPresent("peak_rss_bytes"))
        }
    }

    /// Shards of `job` in the completed state.
    public func completedShards(job: Int) throws -> Int {
        try connection.query(
            "SELECT count(*) AS completed FROM shards WHERE job_id = \(job) AND state = 'completed'",
            purpose: "counting job \(job)'s completed shards"
        ).records[0].decode("completed")
    }
}

extension JobStore {
    /// Records what job `job`'s labels mean (idempotent: every worker that loads the job's model may call it). The
    /// background and torchvision's "N/A" gaps are left out; a model that names no classes records none.
    public func recordCategories(job: Int, classNames: ClassNames) throws {
        let named = classNames.names.enumerated().filter { !ClassNames.unnamed.contains($0.element) }
        guard !named.isEmpty else { return }
        let json = String(
            decoding: try JSONSerialization.data(
                withJSONObject: Dictionary(uniqueKeysWithValues: named.map { (String($0.offset), $0.element) })),
            as: UTF8.self)
        _ = try connection.query(
            """
            INSERT INTO categories (job_id, label, name) SELECT \(job)::bigint, e.key::int, e.value
            FROM jsonb_each_text(\(json)::jsonb) e ON CONFLICT DO NOTHING
            """, purpose: "recording the categories of job \(job)")
    }
}
