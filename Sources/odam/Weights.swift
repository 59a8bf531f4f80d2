import ArgumentParser
import Foundation
import WeightsIO

extension Odam {
    struct Weights: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Work with weights files (safetensors and torch.save checkpoints).",
            subcommands: [Inspect.self])
    }
}

extension Odam.Weights {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tensors of a weights file: name, dtype, shape.")

        @Argument(help: "A .safetensors file or a .pth/.pt checkpoint written by torch.save.")
        var file: String

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() throws {
            let tensors = try WeightsFile.read(contentsOf: file)
            let names = tensors.keys.sorted()
            if json {
                let entries = names.map {
                    ["name": $0, "dtype": tensors[$0]!.dtype.rawValue, "shape": tensors[$0]!.shape] as [String: Any]
                }
                let data = try JSONSerialization.data(withJSONObject: entries, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let width = min(max(names.map(\.count).max() ?? 0, 4), 80)
            var total = 0
            for name in names {
                let tensor = tensors[name]!
                total += tensor.elementCount
                let padded = name.count >= width ? name : name + String(repeating: " ", count: width - name.count)
                print("\(padded)  \(tensor.dtype.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0))  \(tensor.shape)")
            }
            print("\(names.count) tensors, \(total) values")
        }
    }
}
