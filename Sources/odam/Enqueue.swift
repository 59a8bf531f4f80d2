import ArgumentParser
import Foundation
import Logging
import Runner

/// What `odam enqueue` and `odam run` share: the job spec and how images reach the workers.
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

    /// The submission of `folder` these options describe.
    func submission(_ folder: String) throws -> JobSubmission {
        if let shardSize, shardSize <= 0 { throw ValidationError("the shard size must be positive") }
        var submission = JobSubmission(folder: folder)
        submission.specFile = job
        submission.name = name
        submission.shardSize = shardSize
        submission.sourceURL = sourceURL
        submission.stage = stage
        submission.skipChecks = skipChecks
        return submission
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
            let jobs = JobStore(try databaseOptions.connect())
            let recorded = try jobOptions.submission(directory).record(in: jobs, report: { Log.enqueue.notice("\($0)") })
            print("job \(recorded.job): \(recorded.images) images in \(recorded.shards) shards")
        }
    }
}
