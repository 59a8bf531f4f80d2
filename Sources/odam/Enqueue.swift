import ArgumentParser
import Foundation
import Postgres
import Runner

extension Odam {
    struct Enqueue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a folder of images as a job of shards in PostgreSQL (one transaction), and wake the workers.",
            discussion: """
                The folder is walked recursively in a fixed order (names sorted byte-wise); .jpg, .jpeg and .png files \
                are images. Symbolic-link loops and unreadable entries are reported and skipped. The job spec is a JSON \
                file (default: the shipped model, ODAM score and combined maps, Odam-NMS, a local store under .odam).
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "The folder of images.") var directory: String
        @Option(help: "The job's name (default: the folder's name).") var name: String?
        @Option(help: "Images per shard.") var shardSize = 16
        @Option(help: "A job spec (JSON).") var job: String?

        static let defaultSpec = #"{"model": "shipped", "targets": ["score", "combined"], "nms": "odam", "store": "file://.odam/objects"}"#

        func run() throws {
            var spec = Self.defaultSpec
            if let job {
                guard let data = FileManager.default.contents(atPath: job) else {
                    throw ValidationError("\(job): cannot read the job spec")
                }
                guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
                    throw ValidationError("\(job): the job spec must be a JSON object")
                }
                spec = String(decoding: data, as: UTF8.self)
            }
            let root = (directory as NSString).standardizingPath
            let walk = try Enqueuer.walk(root)
            for problem in walk.problems { FileHandle.standardError.write(Data("odam enqueue: \(problem)\n".utf8)) }
            guard !walk.images.isEmpty else { throw ValidationError("\(root): no .jpg, .jpeg or .png images") }
            let connection = try databaseOptions.connect()
            let jobID = try Enqueuer.enqueue(
                connection, name: name ?? (root as NSString).lastPathComponent, source: root, images: walk.images, shardSize: shardSize,
                specJSON: spec)
            print("job \(jobID): \(walk.images.count) images in \((walk.images.count + shardSize - 1) / shardSize) shards")
        }
    }
}
