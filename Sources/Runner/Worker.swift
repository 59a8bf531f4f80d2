import Engine
import Foundation
import Logging
import ObjectStore
import Postgres
import Processes
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
        public var leases = LeasePolicy()
        /// Exit once no shard is waiting or running (tests, batch scripts).
        public var exitWhenIdle = false
        /// Where weights from s3:// URLs are cached, by checksum.
        public var cacheDirectory = ".odam/cache"
        /// How long an unreachable object store is waited out (its shards released, charged to no budget) before
        /// its errors count against the shards' error budget.
        public var storeOutageSeconds = 600.0
        /// The worker's memory limit in bytes (see ``ShardProcessor/memoryLimitBytes``), or nil for none.
        public var memoryLimitBytes: Int?
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
    private var held: [Int: ShardClaim] = [:]
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

    /// The worker's log; its records carry the worker's id once registered, and the shard's where there is one.
    private(set) var logger = Logger(label: "odam.worker")

    /// Connects, waiting out an unreachable server with backoff (up to 5 s between tries) unless stopping.
    func connect() throws -> JobStore {
        var delay = 0.2
        while true {
            do { return try JobStore(connecting: options.connectionString, leases: options.leases) } catch let error as PostgresError {
                if isStopping { throw error }
                logger.warning("\(error); retrying in \(String(format: "%.1f", delay)) s")
                Thread.sleep(forTimeInterval: delay)
                delay = min(5, delay * 2)
            }
        }
    }

    /// A slot's connection: listening for new work.
    func connectListening() throws -> JobStore {
        let jobs = try connect()
        try jobs.listenForWork()
        return jobs
    }

    /// Runs until stopped (or idle, with `exitWhenIdle`).
    public func run() throws -> Summary {
        MemoryUsage.fixLargeAllocationThreshold()
        let jobs = try connect()
        let host = ProcessInfo.processInfo.hostName
        id = try jobs.registerWorker(host: host, version: options.version, threads: ComputeThreads.count)
        logger[metadataKey: "worker"] = "\(id)"
        logger.notice("worker \(id) on \(host), pid \(getpid()): \(options.concurrency) slot(s), \(ComputeThreads.count) thread(s)")
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
        let stopped = (try? connect()) ?? jobs
        try? stopped.markStopped(worker: id)
        return lock.withLock { summary }
    }

    func heartbeatLoop() {
        var jobs: JobStore?
        while !isStopping {
            let claims = lock.withLock { Array(held.values) }
            do {
                if jobs == nil || !jobs!.isOpen { jobs = try JobStore(connecting: options.connectionString, leases: options.leases) }
                let lost = try jobs!.heartbeat(
                    worker: id, holding: claims, residentBytes: MemoryUsage.residentBytes(),
                    peakResidentBytes: MemoryUsage.peakResidentBytes())
                if !lost.isEmpty {
                    lock.withLock { for claim in lost { lostTokens.insert(claim.token) } }
                    for claim in lost {
                        logger.warning(
                            "lost the lease of shard \(claim.shardID) (token \(claim.token)); abandoning it", metadata: claim.logMetadata)
                    }
                }
            } catch {
                jobs = nil
                logger.error("heartbeat failed: \(error)")
            }
            var slept = 0.0
            while slept < options.heartbeatSeconds && !isStopping {
                Thread.sleep(forTimeInterval: 0.1)
                slept += 0.1
            }
        }
    }

    func slotLoop(_ slot: Int) {
        var jobs: JobStore?
        var processors: [Int: ShardProcessor] = [:]
        var delay = 0.2
        while !isStopping {
            do {
                if jobs == nil || !jobs!.isOpen { jobs = try connectListening() }
                let (claimed, claimMilliseconds) = try Stopwatch.time { try jobs!.claim(worker: id, count: 1).first }
                guard let claim = claimed else {
                    if options.exitWhenIdle, try !jobs!.hasWorkLeft() { return }
                    let waitStart = Date()
                    while !isStopping && Date().timeIntervalSince(waitStart) < options.pollSeconds {
                        if try jobs!.waitForWork(timeout: min(1, options.pollSeconds)) { break }
                    }
                    continue
                }
                lock.withLock { held[claim.shardID] = claim }
                defer { lock.withLock { held[claim.shardID] = nil } }
                Failpoint.hit("claimed")
                try work(on: claim, claimMilliseconds: claimMilliseconds, jobs: &jobs, processors: &processors)
                delay = 0.2
            } catch let error as PostgresError where error.isConnectionFailure {
                logger.warning("slot \(slot): \(error); reconnecting")
                jobs = nil
                Thread.sleep(forTimeInterval: delay)
                delay = min(5, delay * 2)
            } catch {
                logger.error("slot \(slot): \(error)")
                Thread.sleep(forTimeInterval: 1)
            }
        }
    }

    func isLost(_ claim: ShardClaim) -> Bool { lock.withLock { lostTokens.contains(claim.token) } }

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
        on claim: ShardClaim, claimMilliseconds: Double, jobs: inout JobStore?, processors: inout [Int: ShardProcessor]
    )
        throws
    {
        let started = Date()
        var results: ShardResults
        let processor: ShardProcessor
        do {
            if processors[claim.jobID] == nil {
                let made = try makeProcessor(job: try jobs!.job(claim.jobID))
                try jobs!.recordCategories(job: claim.jobID, classNames: made.pipeline.classNames)
                processors[claim.jobID] = made
            }
            processor = processors[claim.jobID]!
            results = try processor.process(claim, jobs: jobs!) {
                if isLost(claim) { throw ShardInterruption.leaseLost }
                if isStopping { throw ShardInterruption.stopping }
            }
        } catch ShardInterruption.leaseLost {
            logger.warning("shard \(claim.shardID): lease lost, nothing committed", metadata: claim.logMetadata)
            lock.withLock { summary.shardsAbandoned += 1 }
            return
        } catch ShardInterruption.stopping {
            if try jobs!.release(claim, worker: id, startedAt: started) {
                logger.notice("shard \(claim.shardID): released for another worker (shutting down)", metadata: claim.logMetadata)
            }
            return
        } catch let error as PostgresError where error.isConnectionFailure {
            throw error
        } catch let error as ObjectStoreError where error.isUnreachable && withinStoreOutage() {
            // As for a database outage: the shard is not at fault. Give it back uncharged and wait before the next claim.
            let waited = lock.withLock { Date().timeIntervalSince(storeOutageStart ?? Date()) }
            let delay = min(30, 1 + waited / 4)
            logger.warning(
                """
                shard \(claim.shardID): the object store is unreachable (\(error)); released uncharged, waiting \(Int(delay)) s \
                (outage \(Int(waited)) s of \(Int(options.storeOutageSeconds)) s)
                """, metadata: claim.logMetadata)
            processors[claim.jobID] = nil
            try jobs!.release(claim, worker: id, startedAt: started, reason: "object store unreachable: \(error)", delay: delay)
            Thread.sleep(forTimeInterval: delay)
            return
        } catch {
            logger.error("shard \(claim.shardID): \(error); giving it back for a retry", metadata: claim.logMetadata)
            processors[claim.jobID] = nil
            _ = try jobs!.fail(claim, worker: id, startedAt: started, error: "\(error)")
            return
        }
        lock.withLock { storeOutageStart = nil }
        results.databaseMillisecondsBefore += claimMilliseconds
        if try commit(results, claim: claim, jobs: &jobs) {
            lock.withLock {
                summary.shardsCompleted += 1
                summary.imagesProcessed += results.imageCount
            }
        } else {
            logger.warning("shard \(claim.shardID): lease lost before the commit, nothing committed", metadata: claim.logMetadata)
            lock.withLock { summary.shardsAbandoned += 1 }
        }
    }

    /// Commits, reconnecting when the connection breaks; a commit that may have landed is looked up before a retry.
    func commit(_ results: ShardResults, claim: ShardClaim, jobs: inout JobStore?) throws -> Bool {
        var delay = 0.2
        while true {
            do {
                if jobs == nil || !jobs!.isOpen {
                    jobs = try connectListening()
                    if try jobs!.hasCompleted(claim) { return true }
                }
                if isLost(claim) { return false }
                return try jobs!.commit(results, claim: claim, worker: id)
            } catch let error as PostgresError where error.isConnectionFailure {
                logger.warning("shard \(claim.shardID): the commit's connection broke (\(error)); retrying", metadata: claim.logMetadata)
                jobs = nil
                if isStopping { throw error }
                Thread.sleep(forTimeInterval: delay)
                delay = min(5, delay * 2)
            }
        }
    }

    func makeProcessor(job: StoredJob) throws -> ShardProcessor {
        let spec = job.spec
        let store = try JobResources.store(for: spec.output)
        let (detector, classNames) = try JobResources.detector(for: spec.model, cache: options.cacheDirectory) { bucket in
            var output = spec.output
            output.store = "s3://" + bucket
            return try JobResources.store(for: output)
        }
        var pipeline = try ImagePipeline(detector: detector, spec: spec)
        pipeline.classNames = classNames
        var processor = ShardProcessor(
            pipeline: pipeline, store: store,
            source: JobResources.ImageSource(job.source, store: store), upload: spec.output.upload,
            codec: ImageCodec(maximumPixels: spec.maxPixels ?? ImageCodec.defaultMaximumPixels))
        processor.memoryLimitBytes = options.memoryLimitBytes
        return processor
    }
}
