import ArgumentParser
import Foundation
import ObjectStore
import Postgres
import Runner

/// What `odam enqueue` and `odam run` share: the folder, the job spec and how images reach the workers.
struct JobOptions: ParsableArguments {
    @Option(help: "A job spec, YAML or JSON (see Jobs/; default: the shipped model, Odam-NMS, all maps, a local store under .odam).")
    var job: String?
    @Option(help: "The job's name (default: the spec's name, else the folder's name).") var name: String?
    @Option(help: "Images per shard (default: the spec's shard_size, else 16).") var shardSize: Int?
    @Option(help: "Workers fetch the images from this http(s) URL prefix (the folder's layout under it) instead of the folder.")
    var sourceURL: String?
    @Flag(help: "Upload the images to the job's output store so that workers on other machines can fetch them.") var stage = false
    @Flag(help: "Record the job without first loading its model and writing to its store (when only the workers can).")
    var skipChecks = false

    /// The newest unfinished job over the same folder with the same spec (what `odam run` resumes), if any.
    func unfinishedJob(for directory: String, connection: PostgresConnection) throws -> (job: Int, images: Int, done: Int)? {
        let spec = try job.map { try JobSpec.read(contentsOf: $0) } ?? JobSpec()
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        let row = try connection.query(
            """
            SELECT p.job_id, p.image_count, p.images_done FROM job_progress p JOIN jobs j ON j.id = p.job_id
            WHERE j.source = $1 AND j.spec = $2::jsonb AND j.finished_at IS NULL ORDER BY j.id DESC LIMIT 1
            """, [root, try spec.json()]
        ).rows.first
        return row.map { (Int($0[0]!)!, Int($0[1]!)!, Int($0[2]!)!) }
    }

    /// Walks the folder, reads the spec, stages the images when asked, and records the job; its id and image count.
    func enqueue(_ directory: String, connection: PostgresConnection, defaultShardSize: (Int) -> Int = { _ in 16 }) throws -> (
        job: Int, images: Int, shards: Int
    ) {
        var spec = JobSpec()
        if let job {
            do { spec = try JobSpec.read(contentsOf: job) } catch let error as RunnerError {
                throw CommandFailure(error.description)
            }
        }
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        let walk = try Enqueuer.walk(root)
        for problem in walk.problems { FileHandle.standardError.write(Data("odam enqueue: \(problem)\n".utf8)) }
        guard !walk.images.isEmpty else { throw CommandFailure("\(root): no .jpg, .jpeg or .png images") }
        let shards = shardSize ?? spec.shardSize ?? defaultShardSize(walk.images.count)
        guard shards > 0 else { throw ValidationError("the shard size must be positive") }
        let jobName = name ?? spec.name ?? (root as NSString).lastPathComponent
        // The store is opened once here when it can be (S3 needs credentials the enqueuer may lack); its bucket is
        // created when the enqueuer may (best effort: it may exist, or creation may be forbidden).
        let store = try? JobResources.store(for: spec.output)
        if let s3 = store as? S3Store { try? s3.createBucket() }
        if !skipChecks {
            do { try JobResources.preflight(spec, cache: ".odam/cache") } catch {
                throw CommandFailure("\(error) (--skip-checks records it anyway)")
            }
        }
        var source = root
        if let url = sourceURL ?? spec.source?.url {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw ValidationError("\(url): the source URL must be http(s)")
            }
            source = url
        } else if stage || (spec.source?.stage ?? false) {
            let store = try store ?? JobResources.store(for: spec.output)  // again for its error
            let prefix = "originals/\(jobName)-\(Int(Date().timeIntervalSince1970))"
            source = try Enqueuer.stage(walk.images, root: root, store: store, prefix: prefix) { done in
                if done % 100 == 0 || done == walk.images.count {
                    FileHandle.standardError.write(Data("\rodam enqueue: staged \(done)/\(walk.images.count) images".utf8))
                }
            }
            FileHandle.standardError.write(Data("\n".utf8))
        }
        let jobID = try Enqueuer.enqueue(
            connection, name: jobName, source: source, images: walk.images, shardSize: shards, specJSON: try spec.json())
        return (jobID, walk.images.count, (walk.images.count + shards - 1) / shards)
    }
}

extension Odam {
    struct Enqueue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a folder of images as a job of shards in PostgreSQL (one transaction), and wake the workers.",
            discussion: """
                The folder is walked recursively in a fixed order (names sorted byte-wise); .jpg, .jpeg and .png files \
                are images. Symbolic-link loops and unreadable entries are reported and skipped. Workers read the images \
                from the folder (a path all of them see), from --source-url, or from the job's store (--stage).
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @OptionGroup var jobOptions: JobOptions
        @Argument(help: "The folder of images.") var directory: String

        func run() throws {
            let connection = try databaseOptions.connect()
            let (job, images, shards) = try jobOptions.enqueue(directory, connection: connection)
            print("job \(job): \(images) images in \(shards) shards")
        }
    }
}
