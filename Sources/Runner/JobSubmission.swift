import Foundation
import ObjectStore

/// A folder of images to record as a job, with what `odam enqueue` and `odam run` ask of it: the job spec, a name, a
/// shard size, and how the workers reach the images (the folder, an http(s) URL prefix, or copies staged in the
/// job's store).
public struct JobSubmission: Sendable {
    public var folder: String
    /// A YAML or JSON job spec; nil for the defaults.
    public var specFile: String?
    /// The job's name (default: the spec's, else the folder's name).
    public var name: String?
    /// Images per shard (default: the spec's, else what the caller's policy picks for the image count).
    public var shardSize: Int?
    /// Workers fetch the images from this http(s) URL prefix instead of the folder.
    public var sourceURL: String?
    /// Upload the images to the job's store for workers on other machines.
    public var stage = false
    /// Record the job without loading its model and writing to its store first.
    public var skipChecks = false
    /// Where weights from s3:// URLs are cached (the preflight loads the model).
    public var cacheDirectory = ".odam/cache"

    public init(folder: String) { self.folder = folder }

    /// The folder as a standardized absolute path (what `jobs.source` records).
    public var root: String { URL(fileURLWithPath: folder).standardizedFileURL.path }

    /// The job spec the submission uses.
    public func spec() throws -> JobSpec { try specFile.map { try JobSpec.read(contentsOf: $0) } ?? JobSpec() }

    /// The newest unfinished job over the same folder with the same spec (what `odam run` resumes), if any.
    public func unfinishedJob(in jobs: JobStore) throws -> JobProgress? {
        try jobs.unfinishedJob(source: root, spec: try spec())
    }

    /// What was recorded.
    public struct Recorded: Sendable {
        public var job: Int
        public var images: Int
        public var shards: Int
    }

    /// Walks the folder, reads the spec, checks that its model loads and its store takes writes (unless
    /// `skipChecks`), stages the images when asked, and records the job. `defaultShardSize` picks a shard size from
    /// the image count when neither the submission nor the spec gives one; `report` hears of entries of the folder that were
    /// not taken (with the reason) and of staging.
    public func record(
        in jobs: JobStore, defaultShardSize: (Int) -> Int = { _ in 16 }, report: (String) -> Void = { _ in }
    ) throws -> Recorded {
        let spec = try spec()
        let root = root
        let walk = try Enqueuer.walk(root)
        for problem in walk.problems { report(problem) }
        guard !walk.images.isEmpty else { throw RunnerError("\(root): no .jpg, .jpeg or .png images") }
        let shardSize = shardSize ?? spec.shardSize ?? defaultShardSize(walk.images.count)
        guard shardSize > 0 else { throw RunnerError("the shard size must be positive") }
        let jobName = name ?? spec.name ?? (root as NSString).lastPathComponent
        // The store is opened once here when it can be (S3 needs credentials the enqueuer may lack); what writes need
        // (a bucket) is created when the enqueuer may (best effort: it may exist, or creation may be forbidden).
        let store = try? JobResources.store(for: spec.output)
        try? store?.createContainerIfMissing()
        if !skipChecks {
            do { try JobResources.preflight(spec, cache: cacheDirectory) } catch {
                throw RunnerError("\(error) (--skip-checks records it anyway)")
            }
        }
        var source = root
        if let url = sourceURL ?? spec.source?.url {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw RunnerError("\(url): the source URL must be http(s)") }
            source = url
        } else if stage || (spec.source?.stage ?? false) {
            let store = try store ?? JobResources.store(for: spec.output)  // again for its error
            let prefix = "originals/\(jobName)-\(Int(Date().timeIntervalSince1970))"
            source = try Enqueuer.stage(walk.images, root: root, store: store, prefix: prefix) { done in
                if done % 100 == 0 || done == walk.images.count { report("staged \(done)/\(walk.images.count) images") }
            }
        }
        let job = NewJob(name: jobName, spec: spec, source: source, images: walk.images, shardSize: shardSize)
        return Recorded(job: try jobs.enqueue(job), images: job.images.count, shards: job.shardCount)
    }
}
