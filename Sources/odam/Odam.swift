import ArgumentParser
import DefaultModel
import Detection
import Engine
import Explain
import Processes

/// The odam command: explanations of object detectors, at scale.
@main
struct Odam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "odam",
        abstract: "Explain object detectors with ODAM heat maps, at scale.",
        version: "0.1.0",
        subcommands: [
            Detect.self, ExplainCommand.self, Eval.self, Synth.self, Train.self, RunCommand.self, Migrate.self, Enqueue.self,
            WorkerCommand.self,
            CoordinatorCommand.self, Status.self, Results.self, Report.self, Maps.self, SQL.self, Weights.self, Bench.self,
        ])

    /// Installs the log handler, then runs the command the arguments name.
    static func main() {
        do { try ProcessLog.bootstrap() } catch { exit(withError: error) }
        var command: any ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do { try command.run() } catch { exit(withError: error) }
    }
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
    @Option(
        help:
            "A torchvision builder name (fcos_resnet50_fpn, retinanet_resnet50_fpn, fasterrcnn_resnet50_fpn), a JSON model spec, or a shipped model by name without --weights: ssdlite_mobilenet_v2_person (TensorFlow's SSDLite person detector for photos, the default), fcos_synth_odamtrain or fcos_synth_baseline (FCOS trained on odam's synthetic scenes, with and without Odam-Train)."
    )
    var model: String?

    @Option(help: "The checkpoint: a torch.save .pth or a .safetensors file with torchvision's state-dict keys.")
    var weights: String?

    @Option(
        help:
            "Label names: a JSON list (index = label) or a COCO file or block with categories (id = label); default: the spec's classNames, COCO's for a 91-class head."
    )
    var labels: String?

    /// The spec and weights to load: both given, or neither (the shipped model).
    func resolved() throws -> (spec: ModelSpec, weights: String) {
        var (spec, weights) = try resolvedWithoutLabels()
        if let labels { spec.classNames = try ClassNames(contentsOf: labels).names }
        return (spec, weights)
    }

    func resolvedWithoutLabels() throws -> (spec: ModelSpec, weights: String) {
        switch (model, weights) {
        case (let model?, let weights?): return (try ModelSpec.resolve(model), weights)
        case (nil, nil):
            let files = try DefaultModel.files()
            return (try ModelSpec.resolve(files.spec), files.weights)
        case (let model?, nil) where DefaultModel.variant(named: model) != nil:
            let files = try DefaultModel.files(DefaultModel.variant(named: model)!)
            return (try ModelSpec.resolve(files.spec), files.weights)
        case (_?, nil): throw ValidationError("--model needs --weights (or give neither for the shipped model)")
        case (nil, _?): throw ValidationError("--weights needs --model (a builder name or a JSON model spec)")
        }
    }
}

extension MapPath: ExpressibleByArgument {}

/// A command that failed at run time (not a misused option): ArgumentParser prints "Error: " and the cause and exits
/// with status 1, without the usage text that a ``ValidationError`` adds.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
