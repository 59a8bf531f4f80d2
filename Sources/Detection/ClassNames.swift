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

    /// The label's name, or "label N" when the model names none.
    public func name(of label: Int) -> String {
        names.indices.contains(label) && !names[label].isEmpty ? names[label] : "label \(label)"
    }
}
