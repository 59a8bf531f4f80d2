import ArgumentParser
import Benchmarks
import Foundation

extension Odam {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks, each measured in one run on this machine.",
            subcommands: [Ops.self])
    }
}

extension Odam.Bench {
    struct Ops: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GFLOP/s of sgemm 2048³ and of the main convolutions (forward, input and weight gradients).")

        @OptionGroup var compute: ComputeOptions
        @Option(help: "Timed runs per measurement (the median is reported).") var runs = 5
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            compute.apply()
            let report = OpsBenchmark.run(runs: runs)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(OpsBenchmark.table(report))
            }
        }
    }
}
