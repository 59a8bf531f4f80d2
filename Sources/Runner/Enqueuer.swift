import Files
import Foundation
import ObjectStore

/// What `odam enqueue` does before ``JobStore/enqueue(_:)`` records the job: walking a folder for images, and staging
/// them in the job's store for workers on other machines.
public enum Enqueuer {
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// The walk's result: image paths relative to the folder, in a deterministic depth-first order (names sorted
    /// byte-wise in each folder), and the entries that could not be followed, with the reason.
    public struct Walk: Sendable {
        public var images: [String]
        public var problems: [String]
    }

    /// Walks `root` recursively, following symbolic links that stay inside it but never into a folder it has already
    /// entered (loops). Names are read as bytes (``RawPath``), so a name that is not UTF-8 is walked too. Everything
    /// that is not taken is reported: FIFOs, sockets and devices named like images, links that lead outside the
    /// root, entries that cannot be read.
    public static func walk(_ root: String) throws -> Walk {
        var walk = Walk(images: [], problems: [])
        var visited = Set<String>()
        var info = stat()
        guard stat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, let realRoot = RawPath.realPath(root) else {
            throw RunnerError("\(root): not a folder (\(String(cString: strerror(errno))))")
        }
        func visit(_ folder: String, relative: String) {
            var info = stat()
            guard RawPath.withCString(folder, { stat($0, &info) }) == 0 else {
                walk.problems.append("\(folder): \(String(cString: strerror(errno)))")
                return
            }
            let identity = "\(info.st_dev):\(info.st_ino)"
            guard visited.insert(identity).inserted else {
                walk.problems.append("\(folder): a symbolic-link loop (this folder was entered before); skipped")
                return
            }
            guard let names = directoryEntries(folder) else {
                walk.problems.append("\(folder): cannot list (\(String(cString: strerror(errno))))")
                return
            }
            for raw in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                let name = RawPath.string(raw)
                let path = folder + "/" + name, child = relative.isEmpty ? name : relative + "/" + name
                if String(validating: raw, as: UTF8.self) != nil, RawPath.isAmbiguous(name) {
                    walk.problems.append("\(path): the name holds a private-use character odam uses for raw bytes; skipped")
                    continue
                }
                var entry = stat()
                guard RawPath.withCString(path, { stat($0, &entry) }) == 0 else {
                    walk.problems.append("\(path): \(String(cString: strerror(errno)))")
                    continue
                }
                let isDirectory = entry.st_mode & S_IFMT == S_IFDIR
                let isImage = imageExtensions.contains((name as NSString).pathExtension.lowercased())
                guard isDirectory || isImage else { continue }
                // Only a link can leave the root: every folder walked is inside it, so a plain entry of one is too
                // (one realpath per link, not one per image of a million-image walk).
                var link = stat()
                let isLink = RawPath.withCString(path, { lstat($0, &link) }) == 0 && link.st_mode & S_IFMT == S_IFLNK
                if isLink {
                    guard let real = RawPath.realPath(path), real == realRoot || real.hasPrefix(realRoot + "/") else {
                        walk.problems.append("\(path): a symbolic link that leads outside \(root); skipped")
                        continue
                    }
                }
                if isDirectory {
                    visit(path, relative: child)
                } else if entry.st_mode & S_IFMT == S_IFREG {
                    walk.images.append(child)
                } else {
                    walk.problems.append("\(path): \(RawPath.typeName(entry.st_mode)), not a regular file; skipped")
                }
            }
        }
        visit(root, relative: "")
        return walk
    }

    /// The names in `folder` as bytes, without `.` and `..`; nil when it cannot be listed (errno says why).
    static func directoryEntries(_ folder: String) -> [[UInt8]]? {
        guard let directory = RawPath.withCString(folder, { opendir($0) }) else { return nil }
        defer { closedir(directory) }
        var names: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        return names
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
            let data = try RegularFile.read(root + "/" + path, inside: root)
            try store.put(
                JobResources.ImageSource.stagedKey(prefix: prefix, path: path), bytes: data,
                contentType: "application/octet-stream")
            progress(index + 1)
        }
        return "store:" + prefix
    }
}
