import Foundation
import ObjectStore
import Postgres

/// `odam enqueue`: walks a folder for images and records a job, its shards and its images in one transaction (the
/// images by COPY), then wakes the workers with a NOTIFY.
public enum Enqueuer {
    /// The channel workers listen on for new work.
    public static let channel = "odam_shards"
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// The walk's result: image paths relative to the folder, in a deterministic depth-first order (names sorted
    /// byte-wise in each folder), and the entries that could not be followed, with the reason.
    public struct Walk: Sendable {
        public var images: [String]
        public var problems: [String]
    }

    /// Walks `root` recursively, following symbolic links but never into a folder it has already entered (loops).
    public static func walk(_ root: String) throws -> Walk {
        var walk = Walk(images: [], problems: [])
        var visited = Set<String>()
        var info = stat()
        guard stat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw RunnerError("\(root): not a folder (\(String(cString: strerror(errno))))")
        }
        func visit(_ folder: String, relative: String) {
            var info = stat()
            guard stat(folder, &info) == 0 else {
                walk.problems.append("\(folder): \(String(cString: strerror(errno)))")
                return
            }
            let identity = "\(info.st_dev):\(info.st_ino)"
            guard visited.insert(identity).inserted else {
                walk.problems.append("\(folder): a symbolic-link loop (this folder was entered before); skipped")
                return
            }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                walk.problems.append("\(folder): cannot list (permission denied?)")
                return
            }
            for name in names.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                let path = folder + "/" + name, child = relative.isEmpty ? name : relative + "/" + name
                var entry = stat()
                guard stat(path, &entry) == 0 else {
                    walk.problems.append("\(path): \(String(cString: strerror(errno)))")
                    continue
                }
                if entry.st_mode & S_IFMT == S_IFDIR {
                    visit(path, relative: child)
                } else if entry.st_mode & S_IFMT == S_IFREG, imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    walk.images.append(child)
                }
            }
        }
        visit(root, relative: "")
        return walk
    }

    /// Uploads the images under `root` into `store` at `prefix` (for workers on other machines), in order; the job's
    /// source is then `store:PREFIX`. Two paths that would share a key are refused.
    public static func stage(_ images: [String], root: String, store: any ObjectStore, prefix: String, progress: (Int) -> Void = { _ in })
        throws
        -> String
    {
        var keys: [String: String] = [:]
        for path in images {
            let key = JobResources.ImageSource.stagedKey(prefix: prefix, path: path)
            if let other = keys[key] { throw RunnerError("\(path) and \(other) would be staged under the same key \(key); rename one") }
            keys[key] = path
        }
        for (index, path) in images.enumerated() {
            guard let data = FileManager.default.contents(atPath: root + "/" + path) else {
                throw RunnerError("\(root)/\(path): cannot read")
            }
            try store.put(
                JobResources.ImageSource.stagedKey(prefix: prefix, path: path), bytes: [UInt8](data),
                contentType: "application/octet-stream")
            progress(index + 1)
        }
        return "store:" + prefix
    }

    /// Records the job and returns its id: shards of `shardSize` consecutive images, everything in one transaction.
    public static func enqueue(
        _ connection: PostgresConnection, name: String, source: String, images: [String], shardSize: Int, specJSON: String
    ) throws -> Int {
        guard shardSize > 0 else { throw RunnerError("the shard size must be positive") }
        return try connection.transaction {
            let shardCount = (images.count + shardSize - 1) / shardSize
            let job = try connection.query(
                "INSERT INTO jobs (name, spec, source, image_count, shard_count) VALUES ($1, $2::jsonb, $3, $4, $5) RETURNING id",
                [name, specJSON, source, String(images.count), String(shardCount)])
            let jobID = job.rows[0][0]!
            let shards = try connection.query(
                "INSERT INTO shards (job_id) SELECT $1::bigint FROM generate_series(1, $2::int) ORDER BY 1 RETURNING id",
                [jobID, String(shardCount)]
            ).rows.map { $0[0]! }.sorted { Int($0)! < Int($1)! }
            let rows: [[String?]] = images.enumerated().map { position, path in
                [jobID, shards[position / shardSize], path, String(position)]
            }
            try connection.copyIn("COPY images (job_id, shard_id, path, position) FROM STDIN", rows: rows)
            try connection.query("SELECT pg_notify($1, $2)", [channel, jobID])
            return Int(jobID)!
        }
    }
}

/// A runner failure, naming what and why.
public struct RunnerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
