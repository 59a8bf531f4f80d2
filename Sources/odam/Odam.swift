import ArgumentParser
import Engine

/// The odam command: explanations of object detectors, at scale.
@main
struct Odam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "odam",
        abstract: "Explain object detectors with ODAM heat maps, at scale.",
        version: "0.1.0",
        subcommands: [Detect.self, ExplainCommand.self, Weights.self, Bench.self])
}

/// Options every computing command takes.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and odam's own loops (default: ODAM_THREADS, else all cores).")
    var threads: Int?

    func apply() {
        if let threads { ComputeThreads.set(threads) } else { _ = ComputeThreads.count }
    }
}
