import ArgumentParser
import Engine

/// The odam command: explanations of object detectors, at scale.
@main
struct Odam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "odam",
        abstract: "Explain object detectors with ODAM heat maps, at scale.",
        version: "0.1.0",
        subcommands: [Detect.self, ExplainCommand.self, Eval.self, Synth.self, Train.self, Weights.self, Bench.self])
}

/// Options every computing command takes.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and odam's own loops (default: ODAM_THREADS, else all cores).")
    var threads: Int?

    func apply() {
        if let threads { ComputeThreads.set(threads) } else { _ = ComputeThreads.count }
    }
}

/// The model options of the commands that run a detector.
struct ModelOptions: ParsableArguments {
    @Option(help: "A torchvision builder name (fcos_resnet50_fpn, retinanet_resnet50_fpn, fasterrcnn_resnet50_fpn) or a JSON model spec.")
    var model: String

    @Option(help: "The checkpoint: a torch.save .pth or a .safetensors file with torchvision's state-dict keys.")
    var weights: String
}
