import Foundation
import Postgres
import Runner
import ServiceTestSupport
import TestSupport
import Testing

/// Claims, fencing and rescue (the job store's lease protocol) against a real PostgreSQL.
@Suite(.serialized)
struct JobStoreLeaseTests {
    static func setUp(_ name: String, shards: Int) throws -> PostgresConnection {
        let db = try freshTestDatabase(name)
        _ = try JobStore(db).enqueue(
            NewJob(name: "t", spec: JobSpec(), source: "/d", images: (0..<shards).map { "i\($0).png" }, shardSize: 1))
        return db
    }

    @Test func concurrentClaimsNeverShareAShard() async throws {
        _ = try Self.setUp("lease_claims", shards: 40)
        let url = try testPostgres().connectionString(database: "lease_claims")
        let claimed = try await withThrowingTaskGroup(of: [Int].self) { group in
            for k in 0..<4 {
                group.addTask {
                    let jobs = try JobStore(connecting: url)
                    let worker = try jobs.registerWorker(host: "test", version: "t", threads: 1)
                    var mine: [Int] = []
                    while true {
                        let batch = try jobs.claim(worker: worker, count: 1 + k)
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.shardID)
                    }
                }
            }
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        #expect(claimed.count == 40 && Set(claimed).count == 40)
    }

    @Test func aWorkerWhoseLeaseWasLostCannotCommit() throws {
        let db = try Self.setUp("lease_fencing", shards: 1)
        let jobs = JobStore(db, leases: LeasePolicy(leaseSeconds: 0.3))
        let a = try jobs.registerWorker(host: "a", version: "t", threads: 1),
            b = try jobs.registerWorker(host: "b", version: "t", threads: 1)
        let first = try #require(try jobs.claim(worker: a).first)
        usleep(600_000)  // A stalls past its lease
        #expect(try jobs.rescue() == 1)
        let second = try #require(try jobs.claim(worker: b).first)
        #expect(second.shardID == first.shardID && second.token != first.token)
        #expect(try jobs.heartbeat(worker: a, holding: [first]) == [first], "A learns it lost the shard")
        let started = Date()
        #expect(try jobs.transaction { try jobs.complete(second, worker: b, startedAt: started) })
        // A comes back and tries to commit: refused, and the completed shard stays B's.
        #expect(try jobs.transaction { try jobs.complete(first, worker: a, startedAt: started) } == false)
        #expect(try jobs.fail(first, worker: a, startedAt: started, error: "late") == false)
        #expect(try db.query("SELECT state FROM shards").rows == [["completed"]])
        let outcomes = try db.query("SELECT outcome FROM shard_attempts ORDER BY id").rows.map { $0[0]! }
        #expect(outcomes == ["crash", "completed"])
    }

    @Test func deadWorkersAreRescuedWithinSeconds() throws {
        let db = try Self.setUp("lease_dead", shards: 2)
        let jobs = JobStore(db, leases: LeasePolicy(leaseSeconds: 600, deadWorkerSeconds: 1))
        let worker = try jobs.registerWorker(host: "gone", version: "t", threads: 1)
        let claims = try jobs.claim(worker: worker, count: 2)
        #expect(claims.count == 2)
        #expect(try jobs.rescue() == 0, "a live worker keeps its shards")
        let killed = Date()
        var rescued = 0
        while rescued == 0 && Date().timeIntervalSince(killed) < 10 {
            usleep(200_000)
            rescued = try jobs.rescue()
        }
        #expect(rescued == 2 && Date().timeIntervalSince(killed) < 5, "back in work within seconds of the worker's silence")
        #expect(
            try db.query("SELECT state, crashes, attempt FROM shards ORDER BY id").rows == [
                ["retryable", "1", "0"], ["retryable", "1", "0"],
            ])
    }

    @Test func errorsRetryWithBackoffThenFail() throws {
        let db = try Self.setUp("lease_errors", shards: 1)
        try db.query("UPDATE shards SET max_attempts = 2")
        let jobs = JobStore(db, leases: LeasePolicy())
        let worker = try jobs.registerWorker(host: "w", version: "t", threads: 1)
        let claim = try #require(try jobs.claim(worker: worker).first)
        #expect(try jobs.fail(claim, worker: worker, startedAt: Date(), error: "decoder crashed"))
        let row = try db.query("SELECT state, attempt, run_after >= now() FROM shards").rows[0]
        #expect(row == ["retryable", "1", "t"])
        try db.query("UPDATE shards SET run_after = now()")
        let again = try #require(try jobs.claim(worker: worker).first)
        #expect(try jobs.fail(again, worker: worker, startedAt: Date(), error: "decoder crashed again"))
        #expect(try db.query("SELECT state FROM shards").rows == [["failed"]])
        // Both attempts are kept; the shard's images are reported lost, with the last error.
        #expect(try db.query("SELECT count(*) FROM shard_attempts WHERE outcome = 'error'").rows == [["2"]])
        let images = try db.query("SELECT count(*) FROM images").rows[0][0]
        #expect(try db.query("SELECT count(*) FROM failures WHERE error LIKE '%failed for good: decoder crashed again'").rows == [[images]])
        #expect(try db.query("SELECT images_lost FROM job_progress").rows == [[images]])
    }
}
