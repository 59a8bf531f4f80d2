import Foundation
import Testing

/// The hostile-input regression cases that `Tools/make_hostile_inputs.py` writes to `Tests/HostileInputs`: files
/// that once crashed, hung or misled odam, each with what odam must do with it.
public struct HostileInput: Sendable, Decodable, CustomTestStringConvertible {
    public enum Kind: String, Sendable, Decodable { case image, weights, spec }
    public enum Expectation: String, Sendable, Decodable { case ok, error }

    /// The path relative to `Tests/HostileInputs`.
    public var file: String
    public var kind: Kind
    public var expect: Expectation
    /// A substring the error must contain (empty: any error).
    public var error: String

    public var path: String { hostileInputsDirectory + "/" + file }
    public var testDescription: String { file }

    /// Every case of `kind`, as listed in `cases.json`.
    public static func cases(_ kind: Kind) -> [HostileInput] {
        let url = URL(fileURLWithPath: hostileInputsDirectory + "/cases.json")
        guard let data = try? Data(contentsOf: url), let all = try? JSONDecoder().decode([HostileInput].self, from: data) else {
            return []
        }
        return all.filter { $0.kind == kind }
    }
}

/// `Tests/HostileInputs` of this checkout.
public let hostileInputsDirectory = Repository.path("Tests/HostileInputs")
