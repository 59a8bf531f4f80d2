import ArgumentParser
import Benchmarks
import DefaultModel
import Detection
import Explain
import Foundation
import Training

extension Odam {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks, each measured in one run on this machine.",
            subcommands: [Ops.self, Detect.self, ExplainBench.self, NMSBench.self, TrainBench.self, RunnerBench.self, ClaimStorm.self])
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
                try printJSON(report)
            } else {
                print(OpsBenchmark.table(report))
            }
        }
    }
}

extension Odam.Bench {
    struct Detect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forward time per model at 800x1216 and 512x512, per stage, with peak memory (random weights).")

        @OptionGroup var compute: ComputeOptions
        @Option(
            help:
                "Builder names or JSON model specs (random weights), or shipped models by name with their weights (ssdlite_mobilenet_v2_person at 300x300), comma separated."
        )
        var models = "fcos_resnet50_fpn,retinanet_resnet50_fpn,fasterrcnn_resnet50_fpn"
        @Option(help: "Sizes as HxW, comma separated.") var sizes = "800x1216,512x512"
        @Option(help: "Timed runs per measurement (the median is reported).") var runs = 5
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            compute.apply()
            let parsed = try parseSizes(sizes)
            let resolved = try models.split(separator: ",").map(String.init).map { name -> (String, ModelSpec, String?) in
                guard let variant = DefaultModel.variant(named: name) else { return (name, try ModelSpec.resolve(name), nil) }
                let files = try DefaultModel.files(variant)
                return (name, try ModelSpec.resolve(files.spec), files.weights)
            }
            let rows = try DetectBenchmark.run(models: resolved, sizes: parsed, runs: runs)
            if json {
                try printJSON(rows)
            } else {
                print(DetectBenchmark.table(rows))
            }
        }
    }
}

extension Odam.Bench {
    struct ExplainBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Milliseconds per prediction of each ODAM path (class-logit target), FCOS with random weights, and the forward time.")

        @OptionGroup var compute: ComputeOptions
        @Option(help: "An FCOS builder name or JSON model spec, or a shipped FCOS by name with its weights (fcos_synth_odamtrain).")
        var model = "fcos_resnet50_fpn"
        @Option(help: "Sizes as HxW, comma separated.") var sizes = "800x1216,512x512"
        @Option(help: "Prediction counts for the approximate (reversed-head) path alone.") var counts = "1,10,100,1000"
        @Option(help: "Prediction counts for the exact path alone (slower).") var exactCounts = "1,10"
        @Option(help: "Prediction counts for the runner's maps (each path with its per-level checks and recomputations).")
        var verifiedCounts = "1000"
        @Option(help: "Map paths for the runner's maps, comma separated: exact, approximate.") var verifiedPaths = "exact,approximate"
        @Option(help: "Predictions per level whose approximate maps are compared with exact ones (0: no agreement table).")
        var agreementPerLevel = 40
        @Option(help: "Timed runs per measurement (the median is reported).") var runs = 3
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            compute.apply()
            let parsedSizes = try parseSizes(sizes)
            var (modelName, weights): (String, String?) = (model, nil)
            if let variant = DefaultModel.variant(named: model) {
                let files = try DefaultModel.files(variant)
                (modelName, weights) = (files.spec, files.weights)
            }
            func parsed(_ list: String) -> [Int] { list.split(separator: ",").compactMap { Int($0) } }
            let rows = try ExplainBenchmark.run(
                model: modelName, weights: weights, sizes: parsedSizes, counts: parsed(counts), exactCounts: parsed(exactCounts), runs: runs
            )
            let paths = try verifiedPaths.split(separator: ",").map { name in
                guard let path = MapPath(rawValue: String(name)) else { throw ValidationError("--verified-paths: unknown path '\(name)'") }
                return path
            }
            let verified = try ExplainBenchmark.verified(
                model: modelName, weights: weights, sizes: parsedSizes, counts: parsed(verifiedCounts), paths: paths)
            let agreement =
                agreementPerLevel > 0
                ? try ExplainBenchmark.agreement(model: modelName, weights: weights, sizes: parsedSizes, perLevel: agreementPerLevel) : []
            if json {
                struct Document: Encodable {
                    var paths: [ExplainBenchmark.Row]
                    var runnerMaps: [ExplainBenchmark.VerifiedRow]
                    var agreement: [ExplainBenchmark.LevelAgreementRow]
                }
                try printJSON(Document(paths: rows, runnerMaps: verified, agreement: agreement))
            } else {
                print(ExplainBenchmark.table(rows))
                print("\nThe runner's maps (DetectorMaps: every level checked against plain autograd, recomputed below r 0.999):")
                print(ExplainBenchmark.verifiedTable(verified))
                if !agreement.isEmpty {
                    print("\nApproximate (reversed head, GroupNorm frozen) against exact class-logit maps, per level:")
                    print(ExplainBenchmark.agreementTable(agreement))
                }
            }
        }
    }
}

extension Odam.Bench {
    struct NMSBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nms",
            abstract:
                "NMS, Soft-NMS and Odam-NMS (given the maps) on 1000, 5000 and 20000 candidates; candidate maps against the forward pass.")

        @OptionGroup var compute: ComputeOptions
        @Option(help: "Candidate counts.") var counts = "1000,5000,20000"
        @Option(help: "An FCOS builder name or JSON model spec for the candidate-map timing ('none' to skip).") var model =
            "fcos_resnet50_fpn"
        @Option(help: "Image size (HxW) for the candidate-map timing.") var size = "800x1216"
        @Option(help: "Candidates whose maps are timed.") var mapCandidates = 1000
        @Option(help: "Timed runs per measurement (the median is reported).") var runs = 5
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            compute.apply()
            let rows = NMSBenchmark.run(counts: counts.split(separator: ",").compactMap { Int($0) }, runs: runs)
            let maps =
                model == "none"
                ? nil : try NMSBenchmark.maps(model: model, size: try parseSizes(size)[0], count: mapCandidates, runs: max(runs / 2, 2))
            if json {
                struct Output: Encodable {
                    var nms: [NMSBenchmark.Row]
                    var maps: NMSBenchmark.MapsRow?
                }
                try printJSON(Output(nms: rows, maps: maps))
            } else {
                print(NMSBenchmark.table(rows, maps: maps))
            }
        }
    }
}

extension Odam.Bench {
    struct TrainBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train",
            abstract: "Images per second of training steps of the default model's architecture, with and without Odam-Train.")

        @OptionGroup var compute: ComputeOptions
        @Option(help: "Images per batch.") var batchSize = 8
        @Option(help: "Image side in pixels.") var size = 320
        @Option(help: "Timed iterations (the median is reported).") var iterations = 10
        @Option(help: "Which runs: fcos, odam or both.") var variants = TrainVariants.both
        @Option(help: "Odam-Train's maps: exact (the default) or official (the reversed head's 11x11 windows).")
        var odamMaps = OdamTrainSettings.Maps.exact
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            compute.apply()
            let chosen: [Bool] = variants == .fcos ? [false] : variants == .odam ? [true] : [false, true]
            let rows = try TrainBenchmark.run(
                batchSize: batchSize, size: size, iterations: iterations, odamTrain: chosen, odamMaps: odamMaps)
            if json {
                try printJSON(rows)
            } else {
                print(TrainBenchmark.table(rows))
            }
        }
    }
}

/// The runs of `odam bench train`: plain FCOS, with Odam-Train, or both.
enum TrainVariants: String, ExpressibleByArgument { case fcos, odam, both }

extension OdamTrainSettings.Maps: ExpressibleByArgument {}

/// Sizes given as "HxW,HxW".
func parseSizes(_ text: String) throws -> [(Int, Int)] {
    try text.split(separator: ",").map { size -> (Int, Int) in
        let parts = size.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2 else { throw ValidationError("size '\(size)' is not HxW") }
        return (parts[0], parts[1])
    }
}
