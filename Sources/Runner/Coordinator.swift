import Foundation
import Postgres

/// `odam coordinator`: every tick, the leader (one coordinator holds a session advisory lock; others wait as
/// standbys) puts back the shards of silent workers and expired leases (waking the workers with a NOTIFY), marks
/// jobs whose shards are all done as finished, and refreshes the jobs' rollups.
public final class Coordinator: @unchecked Sendable {
    public struct Options: Sendable {
        public var connectionString: String
        public var tickSeconds = 1.0
        public var leases = ShardLeases()
        /// Exit once every job has finished (tests, `odam run`).
        public var exitWhenDone = false
        public init(connectionString: String) { self.connectionString = connectionString }
    }

    /// The advisory lock key of the leader ("odam" in ASCII).
    public static let leaderLock = 0x6f64_616d

    public let options: Options
    private let lock = NSLock()
    private var stopping = false
    public private(set) var isLeader = false

    public init(options: Options) { self.options = options }

    public func requestStop() { lock.withLock { stopping = true } }
    var isStopping: Bool { lock.withLock { stopping } }

    static func log(_ message: String) { FileHandle.standardError.write(Data("odam coordinator: \(message)\n".utf8)) }

    public func run() {
        var db: PostgresConnection?
        while !isStopping {
            do {
                if db == nil || !db!.isOpen {
                    isLeader = false
                    db = try PostgresConnection(options.connectionString)
                }
                if !isLeader {
                    isLeader = try db!.query("SELECT pg_try_advisory_lock($1)", [String(Self.leaderLock)]).rows == [["t"]]
                    if isLeader { Self.log("leading (pid \(getpid()))") }
                }
                if isLeader {
                    let done = try tick(db!)
                    if options.exitWhenDone && done { return }
                }
            } catch {
                Self.log("\(error)")
                db = nil
            }
            Thread.sleep(forTimeInterval: options.tickSeconds)
        }
    }

    /// One round of the leader's duties; whether every job has finished.
    @discardableResult
    public func tick(_ db: PostgresConnection) throws -> Bool {
        let rescued = try options.leases.rescue(db)
        if rescued > 0 {
            Self.log("put back \(rescued) shard(s) of silent workers or expired leases")
            try db.query("SELECT pg_notify($1, 'rescued')", [Enqueuer.channel])
        }
        let finished = try db.query(
            """
            UPDATE jobs j SET finished_at = now() WHERE finished_at IS NULL AND NOT EXISTS (
                SELECT 1 FROM shards s WHERE s.job_id = j.id AND s.state NOT IN ('completed', 'failed', 'cancelled'))
            RETURNING id
            """)
        for row in finished.rows { Self.log("job \(row[0]!) finished") }
        try db.query(
            """
            UPDATE jobs j SET images_ok = r.ok, images_failed = r.failed, detections = r.detections, rolled_up_at = now()
            FROM (SELECT i.job_id, count(*) FILTER (WHERE r.status = 'ok') AS ok, count(*) FILTER (WHERE r.status = 'failed') AS failed,
                    coalesce(sum(r.kept), 0) AS detections
                  FROM image_results r JOIN images i ON i.id = r.image_id
                  WHERE i.job_id IN (SELECT id FROM jobs WHERE finished_at IS NULL OR rolled_up_at IS NULL OR rolled_up_at < finished_at)
                  GROUP BY i.job_id) r
            WHERE j.id = r.job_id
            """)
        return try db.query("SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE finished_at IS NULL)").rows == [["t"]]
    }
}
