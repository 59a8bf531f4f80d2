public import Engine
import Foundation
public import WeightsIO

/// Tensors written by a `Tools/` script, loaded from a test bundle's fixture folder.
public struct FixtureTensors: Sendable {
    public let tensors: [String: StoredTensor]

    public init(path: String) throws {
        tensors = try SafeTensors.read(contentsOf: path).tensors
    }

    public func tensor(_ name: String) -> Tensor {
        guard let stored = tensors[name] else { fatalError("fixture has no tensor '\(name)'") }
        return stored.floatTensor()
    }

    public func optionalTensor(_ name: String) -> Tensor? { tensors[name]?.floatTensor() }

    public func indices(_ name: String) -> IndexTensor {
        guard let stored = tensors[name] else { fatalError("fixture has no tensor '\(name)'") }
        return IndexTensor(shape: stored.shape, values: stored.integers())
    }
}

/// Where `actual` and `expected` differ by more than `atol + rtol * |expected|`, or nil when they agree.
public func mismatch(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-5) -> String? {
    guard actual.shape == expected.shape else { return "shape \(actual.shape) != expected \(expected.shape)" }
    let a = actual.scalars, e = expected.scalars
    var worst = -1
    var worstExcess: Float = 0
    for i in 0..<a.count {
        let allowed = atol + rtol * abs(e[i])
        let difference = abs(a[i] - e[i])
        if difference.isNaN || difference > allowed, difference - allowed > worstExcess || difference.isNaN {
            worst = i
            worstExcess = difference.isNaN ? .infinity : difference - allowed
        }
    }
    if worst < 0 { return nil }
    return "element \(worst): \(a[worst]) vs expected \(e[worst]) (|diff| \(abs(a[worst] - e[worst])), rtol \(rtol), atol \(atol))"
}

/// A JSON value of a fixture manifest.
public enum JSONValue: Decodable, Sendable {
    case number(Double), string(String), bool(Bool), array([JSONValue]), object([String: JSONValue]), null

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public var int: Int { if case .number(let n) = self { return Int(n) }; fatalError("not a number: \(self)") }
    public var float: Float { if case .number(let n) = self { return Float(n) }; fatalError("not a number: \(self)") }
    public var bool: Bool { if case .bool(let b) = self { return b }; fatalError("not a bool: \(self)") }
    public var string: String { if case .string(let s) = self { return s }; fatalError("not a string: \(self)") }
    public var ints: [Int] { if case .array(let a) = self { return a.map(\.int) }; fatalError("not an array: \(self)") }
    public var floats: [Float] { if case .array(let a) = self { return a.map(\.float) }; fatalError("not an array: \(self)") }
    public var pair: (Int, Int) { let v = ints; return (v[0], v[1]) }
}

/// The fixture folder of a test target.
public func fixtureDirectory(bundle: Bundle) -> String {
    guard let url = bundle.url(forResource: "Fixtures", withExtension: nil) else { fatalError("test bundle has no Fixtures folder") }
    return url.path
}

/// Finds a fixture file of a test target.
public func fixturePath(_ name: String, bundle: Bundle) -> String {
    guard let url = bundle.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
        fatalError("missing fixture \(name); run the Tools/ script that makes it")
    }
    return url.path
}

/// The repository's copy of the sample photographs (`Tests/SampleImages`, from `shared/data/sample-images`).
public let sampleImagesDirectory = Repository.path("Tests/SampleImages")

/// The path of one sample photograph.
public func sampleImagePath(_ name: String) -> String { sampleImagesDirectory + "/" + name }
