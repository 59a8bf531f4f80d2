import Foundation
import Postgres

/// The lease protocol of shards, as SQL: register and heartbeat workers; claim shards with one statement
/// (`FOR UPDATE SKIP LOCKED`), each claim carrying a fencing token; extend, complete or fail a claim only while its
/// token still holds it; rescue the shards of silent workers and expired leases. A worker whose lease was lost can
/// never commit: every write matches `lease_token`.
public struct ShardLeases: Sendable {
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

    /// A claimed shard: what the worker must present with every write.
    public struct Claim: Sendable, Equatable {
        public var shardID: Int
        public var jobID: Int
        public var token: Int
    }

    public func register(_ db: PostgresConnection, host: String, version: String, threads: Int) throws -> Int {
        Int(
            try db.query(
                "INSERT INTO workers (host, pid, version, threads) VALUES ($1, $2, $3, $4) RETURNING id",
                [host, String(getpid()), version, String(threads)]
            ).rows[0][0]!)!
    }

    /// Claims up to `count` claimable shards for `worker` in one statement.
    public func claim(_ db: PostgresConnection, worker: Int, count: Int = 1) throws -> [Claim] {
        try db.query(
            """
            WITH chosen AS MATERIALIZED (
                SELECT id FROM shards WHERE state IN ('available', 'retryable') AND run_after <= now()
                ORDER BY run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED)
            UPDATE shards s SET state = 'running', lease_token = nextval('lease_tokens'), worker_id = $1,
                lease_expires_at = now() + make_interval(secs => $3), deadline_at = now() + make_interval(secs => $4)
            FROM chosen WHERE s.id = chosen.id
            RETURNING s.id, s.job_id, s.lease_token
            """, [String(worker), String(count), String(leaseSeconds), String(deadlineSeconds)]
        ).rows.map { Claim(shardID: Int($0[0]!)!, jobID: Int($0[1]!)!, token: Int($0[2]!)!) }.sorted { $0.shardID < $1.shardID }
    }

    /// The worker's heartbeat, extending the leases it still holds; returns the claims it lost.
    public func heartbeat(_ db: PostgresConnection, worker: Int, holding claims: [Claim]) throws -> [Claim] {
        try db.query("UPDATE workers SET last_heartbeat_at = now(), heartbeats = heartbeats + 1 WHERE id = $1", [String(worker)])
        var lost: [Claim] = []
        for claim in claims {
            let extended = try db.query(
                """
                UPDATE shards SET lease_expires_at = now() + make_interval(secs => $3)
                WHERE id = $1 AND lease_token = $2 AND state = 'running'
                """, [String(claim.shardID), String(claim.token), String(leaseSeconds)])
            if extended.affected == 0 { lost.append(claim) }
        }
        return lost
    }

    /// Completes a claim inside the caller's transaction (after its results were written); false when the token no
    /// longer holds the shard, and the caller must roll back.
    public func complete(_ db: PostgresConnection, _ claim: Claim, worker: Int, startedAt: Date) throws -> Bool {
        let done = try db.query(
            "UPDATE shards SET state = 'completed', completed_at = now() WHERE id = $1 AND lease_token = $2 AND state = 'running'",
            [String(claim.shardID), String(claim.token)])
        guard done.affected == 1 else { return false }
        try db.query(
            "INSERT INTO shard_attempts (shard_id, worker_id, lease_token, started_at, outcome) VALUES ($1, $2, $3, to_timestamp($4), 'completed')",
            [String(claim.shardID), String(worker), String(claim.token), String(startedAt.timeIntervalSince1970)])
        return true
    }

    /// Gives a claim back after an error: retried after a full-jitter backoff, or failed after the last attempt.
    public func fail(_ db: PostgresConnection, _ claim: Claim, worker: Int, startedAt: Date, error: String) throws -> Bool {
        try db.transaction {
            let updated = try db.query(
                """
                UPDATE shards SET attempt = attempt + 1, worker_id = NULL, lease_token = NULL,
                    state = CASE WHEN attempt + 1 >= max_attempts THEN 'failed'::shard_state ELSE 'retryable'::shard_state END,
                    run_after = now() + make_interval(secs => random() * least(600, 5 * power(2, attempt + 1)))
                WHERE id = $1 AND lease_token = $2 AND state = 'running'
                """, [String(claim.shardID), String(claim.token)])
            guard updated.affected == 1 else { return false }
            try db.query(
                "INSERT INTO shard_attempts (shard_id, worker_id, lease_token, started_at, outcome, error) VALUES ($1, $2, $3, to_timestamp($4), 'error', $5)",
                [String(claim.shardID), String(worker), String(claim.token), String(startedAt.timeIntervalSince1970), error])
            return true
        }
    }

    /// Gives a claim back untouched when its worker shuts down (or cannot reach the store): claimable again after
    /// `delay` seconds, charged to no budget.
    @discardableResult
    public func release(
        _ db: PostgresConnection, _ claim: Claim, worker: Int, startedAt: Date, reason: String = "the worker shut down", delay: Double = 0
    ) throws -> Bool {
        try db.transaction {
            let updated = try db.query(
                """
                UPDATE shards SET state = 'available', worker_id = NULL, lease_token = NULL,
                    run_after = now() + make_interval(secs => $3::double precision)
                WHERE id = $1 AND lease_token = $2 AND state = 'running'
                """, [String(claim.shardID), String(claim.token), String(delay)])
            guard updated.affected == 1 else { return false }
            try db.query(
                "INSERT INTO shard_attempts (shard_id, worker_id, lease_token, started_at, outcome, error) VALUES ($1, $2, $3, to_timestamp($4), 'released', $5)",
                [String(claim.shardID), String(worker), String(claim.token), String(startedAt.timeIntervalSince1970), reason])
            try db.query("SELECT pg_notify($1, $2)", [Enqueuer.channel, String(claim.jobID)])
            return true
        }
    }

    /// Puts back the shards of dead workers and of expired leases or deadlines (a crash counts against its own
    /// budget, not the error budget); returns how many shards were rescued.
    @discardableResult
    public func rescue(_ db: PostgresConnection) throws -> Int {
        try db.transaction {
            let rescued = try db.query(
                """
                WITH stale AS (
                    SELECT s.id, s.worker_id, s.lease_token, s.deadline_at < now() AS overdue
                    FROM shards s LEFT JOIN workers w ON w.id = s.worker_id
                    WHERE s.state = 'running' AND (s.lease_expires_at < now() OR s.deadline_at < now()
                        OR w.last_heartbeat_at < now() - make_interval(secs => $1))
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
                """, [String(deadWorkerSeconds)])
            return rescued.rows.count
        }
    }
}
