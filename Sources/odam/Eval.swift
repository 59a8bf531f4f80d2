import ArgumentParser
import Detection
import Explain
import Foundation

extension Odam {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Evaluations on annotated images.", subcommands: [ExplainEval.self])
    }
}

extension Odam.Eval {
    struct ExplainEval: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Pointing game, energy pointing game, compactness, ODI and VEA of heat maps (FCOS) on a COCO-format file.")

        @OptionGroup var compute: ComputeOptions
        @Option(help: "COCO-format annotations (boxes; polygon or RLE masks).") var annotations: String
        @Option(help: "Folder of the annotated images.") var images: String
        @OptionGroup var modelOptions: ModelOptions
        @Option(help: "Methods, comma separated: odam, gradcam, gradcampp.") var methods = "odam,gradcam,gradcampp"
        @Option(help: "IoU a detection needs with its ground truth to be explained (the protocol's 0.9).") var matchIou: Float = 0.9
        @Option(help: "Score a detection needs (the protocol's 0.1).") var scoreThresh: Float = 0.1

        func run() throws {
            compute.apply()
            var spec = try ModelSpec.resolve(modelOptions.model)
            spec.scoreThreshold = min(spec.scoreThreshold ?? scoreThresh, scoreThresh)
            guard let detector = try spec.load(weights: modelOptions.weights) as? FCOS else {
                throw ValidationError("--model: FCOS models only in this version")
            }
            let chosen = try methods.split(separator: ",").map { name -> (String, HeatMapMethod) in
                guard let method = HeatMapMethod.named(String(name)) else { throw ValidationError("unknown method '\(name)'") }
                return (String(name), method)
            }
            let coco = try COCOAnnotations(contentsOf: annotations)
            let rows = try ExplanationEvaluation(matchIoU: matchIou, scoreThreshold: scoreThresh).run(
                detector: detector, annotations: coco, imageDirectory: images, methods: chosen)
            print(ExplanationEvaluation.table(rows))
        }
    }
}
