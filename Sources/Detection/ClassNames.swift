import Foundation

/// What the labels of a model mean: the names its spec gives, COCO's for a 91-class head (torchvision's COCO
/// checkpoints), else none (each label shown as "label N").
public struct ClassNames: Sendable, Equatable {
    /// Names by label; empty when the model has none.
    public var names: [String]

    public init(names: [String]) { self.names = names }

    /// The names of a model built from `spec` with `classCount` labels; a spec's list of another length is refused.
    public init(spec: ModelSpec, classCount: Int) throws {
        if let names = spec.classNames {
            guard names.count == classCount else {
                throw ModelError("the model spec names \(names.count) classes but the model has \(classCount) labels")
            }
            self.init(names: names)
        } else {
            self.init(names: classCount == Self.coco.count ? Self.coco : [])
        }
    }

    /// Names that mark a label as no class: the background and the gaps in torchvision's COCO list.
    public static let unnamed: Set<String> = ["", "__background__", "background", "N/A"]

    /// The label's name, or "label N" when the model names none.
    public func name(of label: Int) -> String {
        names.indices.contains(label) && !names[label].isEmpty ? names[label] : "label \(label)"
    }

    /// Names from a file: a JSON list of names (index = label), or a JSON object with a COCO `categories` block
    /// (`[{"id", "name"}]`, id = label; ids without a category get "label N"). Errors name the file and the cause.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read the label names") }
        let object = try? JSONSerialization.jsonObject(with: data)
        if let list = object as? [Any] {
            guard let names = list as? [String] else { throw ModelError("\(path): a list of label names holds something else") }
            self.init(names: names)
            return
        }
        guard let categories = (object as? [String: Any])?["categories"] as? [[String: Any]], !categories.isEmpty else {
            throw ModelError("\(path): neither a JSON list of names nor an object with a COCO categories block")
        }
        var byID: [Int: String] = [:]
        for (index, category) in categories.enumerated() {
            guard let id = (category["id"] as? NSNumber)?.intValue, (0..<100_000).contains(id), let name = category["name"] as? String
            else {
                throw ModelError("\(path): categories[\(index)] lacks an id in 0..<100000 or a name")
            }
            byID[id] = name
        }
        let count = (byID.keys.max() ?? 0) + 1
        self.init(names: (0..<count).map { byID[$0] ?? ($0 == 0 ? "__background__" : "label \($0)") })
    }
}
