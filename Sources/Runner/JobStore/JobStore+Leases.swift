import Foundation
import Postgres

/// The timings of the lease protocol.
public struct LeasePolicy: Sendable {
    /// Seconds a claim lasts without a heartbeat.
    public var leaseSeconds: Double = 30
    /// Seconds one claim may run however alive its worker is.
    public var deadlineSeconds: Double = 3600
    /// Seconds of silence after which a worker counts as dead.
    public var deadWorkerSeconds: Double = 15

    public init(leaseSeconds: Double = 30, deadlineSeconds: Double = 3600, deadWorkerSeconds: Double = 15) {
        self.leaseSeconds = leaseSeconds
        self.deadlineSeconds = deadlineSeconds
        self.deadWorkerSeconds = deadWorkerSeconds
    }
}

/// The lease protocol of shards: register and heartbeat workers; claim shards with one statement
/// (`FOR UPDATE SKIP LOCKED`), each claim carrying a fencing token; extend, complete or fail a claim only while its
/// token still holds it; rescue the shards of silent workers and expired leases. A worker whose lease was lost can
/// never commit: every write matches `lease_token`.
extension JobStore {
    /// Records a worker; its id.
    public func registerWorker(host: String, version: String, threads: Int) throws -> Int {
        try connection.query(
            "INSERT INTO workers (host, pid, version, threads) VALUES (\(host), \(Int(getpid())), \(version), \(threads)) RETURNING id",
            purpose: "registering a worker"
        ).records[0].decode("id")
    }

    /// Marks a worker as stopped.
    public func markStopped(worker: Int) throws {
        try connection.query("UPDATE workers SET stopped_at = now() WHERE id = \(worker)", purpose: "marking worker \(worker) stopped")
    }

    /// Claims up to `count` claimable shards for `worker` in one statement.
    public func claim(worker: Int, count: Int = 1) throws -> [ShardClaim] {
        try connection.query(
            """
            WITH chosen AS MATERIALIZED (
                SELECT id FROM shards WHERE state IN ('available', 'retryable') AND run_after <= now()
                ORDER BY run_after, id LIMIT \(count) FOR UPDATE SKIP LOCKED)
            UPDATE shards s SET state = 'running', lease_token = nextval('lease_tokens'), worker_id = \(worker),
                lease_expires_at = now() + make_interval(secs => \(leases.leaseSeconds)),
                deadline_at = now() + make_interval(secs => \(leases.deadlineSeconds))
            FROM chosen WHERE s.id = chosen.id
            RETURNING s.id, s.job_id, s.lease_token
            """, purpose: "claiming shards for worker \(worker)"
        ).records.map { ShardClaim(shardID: try $0.decode("id"), jobID: try $0.decode("job_id"), token: try $0.decode("lease_token")) }
            .sorted { $0.shardID < $1.shardID }
    }

    /// Whether any shard is waiting or running (an idle worker with nothing left may exit).
    public func hasWorkLeft() throws -> Bool {
        try connection.query(
            "SELECT EXISTS (SELECT 1 FROM shards WHERE state IN ('available', 'retryable', 'running')) AS left",
            purpose: "looking for work left"
        ).records[0].decode("left")
    }

    /// The worker's heartbeat with its resident memory now and at its peak, extending the leases it still holds;
    /// returns the claims it lost.
    public func heartbeat(worker: Int, holding claims: [ShardClaim], residentBytes: Int? = nil, peakResidentBytes: Int? = nil) throws
        -> [ShardClaim]
    {
        try connection.query(
            """
            UPDATE workers SET last_heartbeat_at = now(), heartbeats = heartbeats + 1,
                rss_bytes = coalesce(\(residentBytes)::bigint, rss_bytes), peak_rss_bytes = coalesce(\(peakResidentBytes)::bigint, peak_rss_bytes)
            WHERE id = \(worker)
            """, purpose: "recording worker \(worker)'s heartbeat")
        var lost: [ShardClaim] = []
        for claim in claims {
            let extended = try connection.query(
                """
                UPDATE shards SET lease_expires_at = now() + make_interval(secs => \(leases.leaseSeconds))
                WHERE id = \(claim.shardID) AND lease_token = \(claim.token) AND state = 'running'
                """, purpose: "extending the lease of shard \(claim.shardID)")
            if extended.affected == 0 { lost.append(claim) }
        }
        return lost
    }

    /// Completes a claim inside the caller's transaction (after its results were written); false when the token no
    /// longer holds the shard, and the caller must roll back.
    public func complete(_ claim: ShardClaim, worker: Int, startedAt: Date) throws -> Bool {
        let done = try connection.query(
            """
            UPDATE shards SET state = 'completed', completed_at = now()
            WHERE id = \(claim.shardID) AND lease_token = \(claim.token) AND state = 'running'
            """, purpose: "completing shard \(claim.shardID)")
        guard done.affected == 1 else { return false }
        try recordAttempt(claim, worker: worker, startedAt: startedAt, outcome: "completed", error: nil)
        return true
    }

    /// Whether the claim's completion was committed (a commit whose connection broke may have landed).
    public func hasCompleted(_ claim: ShardClaim) throws -> Bool {
        try connection.query(
            """
            SELECT EXISTS (SELECT 1 FROM shard_attempts
                WHERE shard_id = \(claim.shardID) AND lease_token = \(claim.token) AND outcome = 'completed') AS landed
            """, purpose: "checking whether shard \(claim.shardID) was committed"
        ).records[0].decode("landed")
    }

    /// Gives a claim back after an error: retried after a full-jitter backoff, or failed after the last attempt.
    public func fail(_ claim: ShardClaim, worker: Int, startedAt: Date, error: String) throws -> Bool {
        try transaction {
            let updated = try connection.query(
                """
                UPDATE shards SET attempt = attempt + 1, worker_id = NULL, lease_token = NULL,
                    state = CASE WHEN attempt + 1 >= max_attempts THEN 'failed'::shard_state ELSE 'retryable'::shard_state END,
                    run_after = now() + make_interval(secs => random() * least(600, 5 * power(2, attempt + 1)))
                WHERE id = \(claim.shardID) AND lease_token = \(claim.token) AND state = 'running'
                """, purpose: "failing shard \(claim.shardID)")
            guard updated.affected == 1 else { return false }
            try recordAttempt(claim, worker: worker, startedAt: startedAt, outcome: "error", error: error)
            return true
        }
    }

    /// Gives a claim back untouched when its worker shuts down (or cannot reach the store): claimable again after
    /// `delay` seconds, charged to no budget.
    @discardableResult
    public func release(_ claim: ShardClaim, worker: Int, startedAt: Date, reason: String = "the worker shut down", delay: Double = 0)
        throws -> Bool
    {
        try transaction {
            let updated = try connection.query(
                """
                UPDATE shards SET state = 'available', worker_id = NULL, lease_token = NULL,
                    run_after = now() + make_interval(secs => \(delay)::double precision)
                WHERE id = \(claim.shardID) AND lease_token = \(claim.token) AND state = 'running'
                """, purpose: "releasing shard \(claim.shardID)")
            guard updated.affected == 1 else { return false }
            try recordAttempt(claim, worker: worker, startedAt: startedAt, outcome: "released", error: reason)
            try notifyWorkers(String(claim.jobID))
            return true
        }
    }

    func recordAttempt(_ claim: ShardClaim, worker: Int, startedAt: Date, outcome: String, error: String?) throws {
        try connection.query(
            """
            INSERT INTO shard_attempts (shard_id, worker_id, lease_token, started_at, outcome, error)
            VALUES (\(claim.shardID), \(worker), \(claim.token), to_timestamp(\(startedAt)), \(outcome), \(error))
            """, purpose: "recording an attempt of shard \(claim.shardID)")
    }

    /// Puts back the shards of dead workers and of expired leases or deadlines (a crash counts against its own
    /// budget, not the error budget); returns how many shards were rescued.
    @discardableResult
    public func rescue() throws -> Int {
        try transaction {
            try connection.query(
                """
                WITH stale AS (
                    SELECT s.id, s.worker_id, s.lease_token, s.deadline_at < now() AS overdue
                    FROM shards s LEFT JOIN workers w ON w.id = s.worker_id
                    WHERE s.state = 'running' AND (s.lease_expires_at < now() OR s.deadline_at < now()
                        OR w.last_heartbeat_at < now() - make_interval(secs => \(leases.deadWorkerSeconds)))
                    FOR UPDATE OF s SKIP LOCKED),
                recorded AS (
                    INSERT INTO shard_attempts (shard_id, worker_id, lease_token, started_at, outcome, error)
                    SELECT id, worker_id, lease_token, now(), CASE WHEN overdue THEN 'expired' ELSE 'crash' END,
                        'lease lost: worker silent, lease expired or deadline passed' FROM stale)
                UPDATE shards s SET
                    crashes = s.crashes + CASE WHEN stale.overdue THEN 0 ELSE 1 END,
                    attempt = s.attempt + CASE WHEN stale.overdue THEN 1 ELSE 0 END,
                    state = CASE WHEN (NOT stale.overdue AND s.crashes + 1 >= s.max_crashes)
                        OR (stale.overdue AND s.attempt + 1 >= s.max_attempts) THEN 'failed'::shard_state
                        ELSE 'retryable'::shard_state END,
                    worker_id = NULL, lease_token = NULL, run_after = now()
                FROM stale WHERE s.id = stale.id
                RETURNING s.id
                """, purpose: "rescuing the shards of silent workers and expired leases"
            ).rows.count
        }
    }
}
