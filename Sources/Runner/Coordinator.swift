import Foundation
import Logging

/// `odam coordinator`: every tick, the leader (one coordinator holds a session advisory lock; others wait as
/// standbys) puts back the shards of silent workers and expired leases (waking the workers with a NOTIFY), marks
/// jobs whose shards are all done as finished, and refreshes the jobs' rollups.
public final class Coordinator: @unchecked Sendable {
    public struct Options: Sendable {
        public var connectionString: String
        public var tickSeconds = 1.0
        public var leases = LeasePolicy()
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

    let logger = Logger(label: "odam.coordinator")

    public func run() {
        var jobs: JobStore?
        while !isStopping {
            do {
                if jobs == nil || !jobs!.isOpen {
                    isLeader = false
                    jobs = try JobStore(connecting: options.connectionString, leases: options.leases)
                }
                if !isLeader {
                    isLeader = try jobs!.tryAdvisoryLock(Self.leaderLock)
                    if isLeader { logger.notice("leading (pid \(getpid()))") }
                }
                if isLeader {
                    let done = try tick(jobs!)
                    if options.exitWhenDone && done { return }
                }
            } catch {
                logger.error("\(error)")
                jobs = nil
            }
            Thread.sleep(forTimeInterval: options.tickSeconds)
        }
    }

    /// One round of the leader's duties; whether every job has finished.
    @discardableResult
    public func tick(_ jobs: JobStore) throws -> Bool {
        let rescued = try jobs.rescue()
        if rescued > 0 {
            logger.notice("put back \(rescued) shard(s) of silent workers or expired leases")
            try jobs.notifyWorkers("rescued")
        }
        for job in try jobs.finishJobs() { logger.notice("job \(job) finished", metadata: ["job": "\(job)"]) }
        try jobs.refreshRollups()
        return try jobs.allJobsFinished()
    }
}
