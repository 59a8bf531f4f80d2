import Foundation

extension COCOAnnotations {
    /// Finds images of the annotation file by their paths, so that results join the user's own ground truth: a path
    /// matches the image whose `file_name` equals it (relative to the dataset's root, `./` and repeated slashes
    /// ignored), else the one whose `file_name` ends the path at a folder boundary (`/data/coco/val/0001.jpg` matches
    /// `val/0001.jpg`), when exactly one does.
    public struct PathIndex: Sendable {
        var byName: [String: Int] = [:]
        var ambiguous: Set<String> = []

        public init(_ annotations: COCOAnnotations) {
            for image in annotations.images {
                let name = Self.normalized(image.fileName)
                if byName[name] != nil { ambiguous.insert(name) } else { byName[name] = image.id }
            }
        }

        static func normalized(_ path: String) -> String {
            path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.joined(separator: "/")
        }

        /// The id of the image at `path`, or nil when none or more than one image matches it.
        public func imageID(forPath path: String) -> Int? {
            let parts = Self.normalized(path).split(separator: "/")
            // The longest tail first: `a/b/c.png` tries `a/b/c.png`, `b/c.png`, then `c.png`.
            for start in parts.indices {
                let tail = parts[start...].joined(separator: "/")
                if ambiguous.contains(tail) { return nil }
                if let id = byName[tail] { return id }
            }
            return nil
        }
    }

    /// The category id for a detector's label: the label itself when the file has that category, else the category
    /// whose name is the label's name (case-insensitive), else the label.
    public func categoryID(label: Int, labelName: String?) -> Int {
        if categories[label] != nil { return label }
        guard let labelName else { return label }
        return categories.first { $0.value.caseInsensitiveCompare(labelName) == .orderedSame }?.key ?? label
    }
}
