import Engine
import Foundation
import ObjectStore
import Postgres
import Vision

/// `odam worker`: registers, heartbeats on a connection of its own, and runs `concurrency` slots that each claim a
/// shard (one statement, `FOR UPDATE SKIP LOCKED`, a fencing token), process it and commit it under the token. Slots
/// wake on LISTEN/NOTIFY, with polling as the fallback. A claim whose lease the heartbeat finds lost is abandoned at
/// the next image with nothing committed; a stop request (SIGTERM) releases the current claims at the next image.
/// Database outages are waited out with backoff and reconnection; a commit whose connection broke is checked before it
/// is retried.
public final class Worker: @unchecked Sendable {
    public struct Options: Sendable {
        public var connectionString: String
        /// Shards processed at once (each on its own thread and connection).
        public var concurrency = 1
        public var heartbeatSeconds = 3.0
        /// The longest a slot waits for a NOTIFY before looking for work again.
        public var pollSeconds = 5.0
        public var leases = ShardLeases()
        /// Exit once no shard is waiting or running (tests, batch scripts).
        public var exitWhenIdle = false
        /// Where weights from s3:// URLs are cached, by checksum.
        public var cacheDirectory = ".odam/cache"
        /// How long an unreachable object store is waited out (its shards released, charged to no budget) before
        /// its errors count against the shards' error budget.
        public var storeOutageSeconds = 600.0
        public var version = "0.1.0"

        public init(connectionString: String) { self.connectionString = connectionString }
    }

    /// What a worker did before it exited.
    public struct Summary: Sendable {
        public var shardsCompleted = 0
        public var shardsAbandoned = 0
        public var imagesProcessed = 0
    }

    public let options: Options
    private let lock = NSLock()
    private var held: [Int: ShardLeases.Claim] = [:]
    private var lostTokens: Set<Int> = []
    private var stopping = false
    private var summary = Summary()
    /// When the object store was first found unreachable in the current outage (nil while it answers).
    private var storeOutageStart: Date?
    /// The worker's row in `workers`, once registered.
    public private(set) var id = 0

    public init(options: Options) { self.options = options }

    /// Asks the worker to stop: no new claims; current ones are released at the next image.
    public func requestStop() { lock.withLock { stopping = true } }

    var isStopping: Bool { lock.withLock { stopping } }

    static func log(_ message: String) { FileHandle.standardError.write(Data("odam worker: \(message)\n".utf8)) }

    /// Connects, waiting out an unreachable server with backoff (up to 5 s between tries) unless stopping.
    func connect() throws -> PostgresConnection {
        var delay = 0.2
        while true {
            do { return try PostgresConnection(options.connectionString) } catch let error as PostgresError {
                if isStopping { throw error }
                Self.log("\(error); retrying in \(String(format: "%.1f", delay)) s")
                Thread.sleep(forTimeInterval: delay)
                delay = min(5, delay * 2)
            }
        }
    }

    /// A slot's connection: listening for new work.
    func connectListening() throws -> PostgresConnection {
        let db = try connect()
        try db.listen(Enqueuer.channel)
        return db
    }

    /// Runs until stopped (or idle, with `exitWhenIdle`).
    public func run() throws -> Summary {
        let db = try connect()
        let host = ProcessInfo.processInfo.hostName
        id = try options.leases.register(db, host: host, version: options.version, threads: ComputeThreads.count)
        Self.log("worker \(id) on \(host), pid \(getpid()): \(options.concurrency) slot(s), \(ComputeThreads.count) thread(s)")
        let group = DispatchGroup()
        let heartbeat = Thread { [self] in heartbeatLoop() }
        heartbeat.start()
        for slot in 0..<options.concurrency {
            group.enter()
            let thread = Thread { [self] in
                slotLoop(slot)
                group.leave()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        group.wait()
        requestStop()
        let stopped = (try? connect()) ?? db
        try? stopped.query("UPDATE workers SET stopped_at = now() WHERE id = $1", [String(id)])
        return lock.withLock { summary }
    }

    func heartbeatLoop() {
        var db: PostgresConnection?
        while !isStopping {
            let claims = lock.withLock { Array(held.values) }
            do {
                if db == nil || !db!.isOpen { db = try PostgresConnection(options.connectionString) }
                let lost = try options.leases.heartbeat(db!, worker: id, holding: claims)
                if !lost.isEmpty {
                    lock.withLock { for claim in lost { lostTokens.insert(claim.token) } }
                    for claim in lost { Self.log("lost the lease of shard \(claim.shardID) (token \(claim.token)); abandoning it") }
                }
            } catch {
                db = nil
                Self.log("heartbeat failed: \(error)")
            }
            var slept = 0.0
            while slept < options.heartbeatSeconds && !isStopping {
                Thread.sleep(forTimeInterval: 0.1)
                slept += 0.1
            }
        }
    }

    func slotLoop(_ slot: Int) {
        var db: PostgresConnection?
        var processors: [Int: ShardProcessor] = [:]
        var delay = 0.2
        while !isStopping {
            do {
                if db == nil || !db!.isOpen { db = try connectListening() }
                let claimStart = DispatchTime.now().uptimeNanoseconds
                let claimed = try options.leases.claim(db!, worker: id, count: 1).first
                let claimMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - claimStart) / 1e6
                guard let claim = claimed else {
                    if options.exitWhenIdle,
                        try db!.query("SELECT NOT EXISTS (SELECT 1 FROM shards WHERE state IN ('available', 'retryable', 'running'))").rows
                            == [["t"]]
                    {
                        return
                    }
                    let waitStart = Date()
                    while !isStopping && Date().timeIntervalSince(waitStart) < options.pollSeconds {
                        if try db!.waitForNotification(timeout: min(1, options.pollSeconds)) != nil { break }
                    }
                    continue
                }
                lock.withLock { held[claim.shardID] = claim }
                defer { lock.withLock { held[claim.shardID] = nil } }
                Failpoint.hit("claimed")
                try work(on: claim, claimMilliseconds: claimMilliseconds, db: &db, processors: &processors)
                delay = 0.2
            } catch let error as PostgresError where error.isConnectionFailure {
                Self.log("slot \(slot): \(error); reconnecting")
                db = nil
                Thread.sleep(forTimeInterval: delay)
                delay = min(5, delay * 2)
            } catch {
                Self.log("slot \(slot): \(error)")
                Thread.sleep(forTimeInterval: 1)
            }
        }
    }

    func isLost(_ claim: ShardLeases.Claim) -> Bool { lock.withLock { lostTokens.contains(claim.token) } }

    /// Starts or continues the current store outage; false once it has lasted longer than the options allow.
    func withinStoreOutage() -> Bool {
        lock.withLock {
            let start = storeOutageStart ?? Date()
            storeOutageStart = start
            return Date().timeIntervalSince(start) < options.storeOutageSeconds
        }
    }

    /// Processes and commits one claim; errors of the job (its spec, model or store) give the shard back for a retry.
    func work(
        on claim: ShardLeases.Claim, claimMilliseconds: Double, db: inout PostgresConnection?, processors: inout [Int: ShardProcessor]
    )
        throws
    {
        let started = Date()
        var results: ShardProcessor.Results
        let processor: ShardProcessor
        do {
            if processors[claim.jobID] == nil { processors[claim.jobID] = try makeProcessor(job: claim.jobID, db: db!) }
            processor = processors[claim.jobID]!
            results = try processor.process(claim, db: db!) {
                if isLost(claim) { throw ShardInterruption.leaseLost }
                if isStopping { throw ShardInterruption.stopping }
            }
        } catch ShardInterruption.leaseLost {
            Self.log("shard \(claim.shardID): lease lost, nothing committed")
            lock.withLock { summary.shardsAbandoned += 1 }
            return
        } catch ShardInterruption.stopping {
            if try options.leases.release(db!, claim, worker: id, startedAt: started) {
                Self.log("shard \(claim.shardID): released for another worker (shutting down)")
            }
            return
        } catch let error as PostgresError where error.isConnectionFailure {
            throw error
        } catch let error as ObjectStoreError where error.isUnreachable && withinStoreOutage() {
            // As for a database outage: the shard is not at fault. Give it back uncharged and wait before the next claim.
            let waited = lock.withLock { Date().timeIntervalSince(storeOutageStart ?? Date()) }
            let delay = min(30, 1 + waited / 4)
            Self.log(
                "shard \(claim.shardID): the object store is unreachable (\(error)); released uncharged, waiting \(Int(delay)) s "
                    + "(outage \(Int(waited)) s of \(Int(options.storeOutageSeconds)) s)")
            processors[claim.jobID] = nil
            try options.leases.release(
                db!, claim, worker: id, startedAt: started, reason: "object store unreachable: \(error)", delay: delay)
            Thread.sleep(forTimeInterval: delay)
            return
        } catch {
            Self.log("shard \(claim.shardID): \(error); giving it back for a retry")
            processors[claim.jobID] = nil
            _ = try options.leases.fail(db!, claim, worker: id, startedAt: started, error: "\(error)")
            return
        }
        lock.withLock { storeOutageStart = nil }
        results.databaseMillisecondsBefore += claimMilliseconds
        if try commit(results, claim: claim, processor: processor, db: &db) {
            lock.withLock {
                summary.shardsCompleted += 1
                summary.imagesProcessed += results.images
            }
        } else {
            Self.log("shard \(claim.shardID): lease lost before the commit, nothing committed")
            lock.withLock { summary.shardsAbandoned += 1 }
        }
    }

    /// Commits, reconnecting when the connection breaks; a commit that may have landed is looked up before a retry.
    func commit(_ results: ShardProcessor.Results, claim: ShardLeases.Claim, processor: ShardProcessor, db: inout PostgresConnection?)
        throws
        -> Bool
    {
        var delay = 0.2
        while true {
            do {
                if db == nil || !db!.isOpen {
                    db = try connectListening()
                    let landed = try db!.query(
                        "SELECT 1 FROM shard_attempts WHERE shard_id = $1 AND lease_token = $2 AND outcome = 'completed'",
                        [String(claim.shardID), String(claim.token)])
                    if !landed.rows.isEmpty { return true }
                }
                if isLost(claim) { return false }
                return try processor.commit(results, claim: claim, worker: id, db: db!)
            } catch let error as PostgresError where error.isConnectionFailure {
                Self.log("shard \(claim.shardID): the commit's connection broke (\(error)); retrying")
                db = nil
                if isStopping { throw error }
                Thread.sleep(forTimeInterval: delay)
                delay = min(5, delay * 2)
            }
        }
    }

    func makeProcessor(job: Int, db: PostgresConnection) throws -> ShardProcessor {
        let row = try db.query("SELECT spec::text, source FROM jobs WHERE id = $1", [String(job)]).rows[0]
        let spec = try JobSpec.stored(row[0]!, job: job)
        let store = try JobResources.store(for: spec.output)
        let detector = try JobResources.detector(for: spec.model, cache: options.cacheDirectory) { bucket in
            var output = spec.output
            output.store = "s3://" + bucket
            return try JobResources.store(for: output)
        }
        return ShardProcessor(
            pipeline: try ImagePipeline(detector: detector, spec: spec), store: store,
            source: JobResources.ImageSource(row[1]!, store: store),
            upload: spec.output.upload, leases: options.leases,
            codec: ImageCodec(maximumPixels: spec.maxPixels ?? ImageCodec.defaultMaximumPixels))
    }
}
