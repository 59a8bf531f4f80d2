import ArgumentParser
import Detection
import Explain
import Foundation

extension Odam.Eval {
    struct NMSSweepEval: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nms-sweep",
            abstract: "Odam-NMS against the whole NMS curve: thresholds tuned on one split, scored on another, with intervals.",
            discussion: """
                Runs the detector with candidate maps once per image of both splits (COCO files). On the tuning split it \
                chooses, for each T_iou, the Odam-NMS T_l/T_h of the grid with the best Jaccard index (the paper's \
                protocol: one T_iou for NMS and Odam-NMS), Soft-NMS's best σ, and each method's best setting overall. \
                On the test split it scores every choice, and the detector's default T_l/T_h, with AP50, MR⁻², JI and \
                crowd/sparse recall at the best-JI score threshold, each with a bootstrap 95% interval over the test \
                images; differences between methods are paired on the same resampled images.
                """)

        @OptionGroup var compute: ComputeOptions
        @Option(help: "The tuning split's COCO annotations.") var tuningAnnotations: String
        @Option(help: "Folder of the tuning split's images.") var tuningImages: String
        @Option(help: "The test split's COCO annotations.") var annotations: String
        @Option(help: "Folder of the test split's images.") var images: String
        @OptionGroup var modelOptions: ModelOptions
        @Option(help: "T_iou values, comma separated.") var ious = "0.4,0.5,0.6,0.7,0.8"
        @Option(help: "Odam-NMS T_l values tried on the tuning split.") var lows = "0,0.1,0.2,0.3,0.4,0.5,0.6"
        @Option(help: "Odam-NMS T_h values tried on the tuning split.") var highs = "0.4,0.5,0.6,0.7,0.8,0.9,0.95"
        @Option(help: "Soft-NMS Gaussian σ values tried on the tuning split.") var softSigmas = "0.1,0.3,0.5,0.7,0.9,1.2,1.5"
        @Option(help: "Bootstrap resamples of the test images.") var resamples = 1000
        @Option(help: "Seed of the resamples.") var seed: UInt64 = 1
        @Option(help: "Candidate score threshold (default: the model's).") var scoreThresh: Float?
        @Option(help: "Detections kept per image.") var detections = 100
        @Option(help: "Category (COCO id) the crowd metrics score; default: 'person', else 1.") var crowdCategory: Int?
        @Option(help: "Use the first N images of each split only.") var limitImages: Int?
        @Option(help: "Odam-NMS's candidate maps: auto, exact or approximate (as odam eval detect).") var mapPath: MapPath = .auto
        @Option(
            help: "Odam-NMS candidate map targets tried, each as its own Odam-NMS: logit (the official code), score (the paper's text).")
        var candidateTargets = "logit"
        @Option(
            help:
                "Odam-NMS candidate map grids tried: default (input/16; Faster R-CNN input/8), stride:N, short-edge:N (the paper's text: 50)."
        )
        var candidateGrids = "default"
        @Flag(help: "Print the results as one JSON object instead of a table.") var json = false

        func run() throws {
            compute.apply()
            var (spec, weightsPath) = try modelOptions.resolved()
            if let scoreThresh { spec.scoreThreshold = scoreThresh }
            let detector = try spec.load(weights: weightsPath)
            func values(_ text: String, _ name: String) throws -> [Float] {
                let parsed = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
                guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= (name == "soft-sigmas" ? 10 : 1) }) else {
                    throw ValidationError("--\(name): '\(text)' is not a comma-separated list of numbers in range")
                }
                return parsed.map { $0! }
            }
            let tuning = try COCOAnnotations(contentsOf: tuningAnnotations).prefix(images: limitImages)
            let test = try COCOAnnotations(contentsOf: annotations).prefix(images: limitImages)
            var category = crowdCategory ?? 1
            if crowdCategory == nil, let person = test.categories.first(where: { $0.value == "person" }) { category = person.key }
            var sweep = NMSSweep(evaluation: DetectionEvaluation(crowdCategory: category, detectionsPerImage: detections))
            sweep.ious = try values(ious, "ious")
            sweep.lows = try values(lows, "lows")
            sweep.highs = try values(highs, "highs")
            sweep.softSigmas = try values(softSigmas, "soft-sigmas").filter { $0 > 0 }
            guard resamples >= 0, !sweep.softSigmas.isEmpty else { throw ValidationError("--resamples must be at least 0 and σ above 0") }
            var variants: [CandidateVariant] = []
            for targetName in candidateTargets.split(separator: ",") {
                guard let target = ExplanationTarget(rawValue: String(targetName)), target == .logit || target == .score else {
                    throw ValidationError("--candidate-targets: '\(targetName)' is not logit or score")
                }
                for gridName in candidateGrids.split(separator: ",") {
                    if gridName == "default" {
                        variants.append(CandidateVariant(target: target))
                    } else if let grid = CandidateGrid(parsing: String(gridName)) {
                        variants.append(CandidateVariant(target: target, grid: grid))
                    } else {
                        throw ValidationError("--candidate-grids: '\(gridName)' is not default, stride:N or short-edge:N")
                    }
                }
            }
            guard !variants.isEmpty else { throw ValidationError("--candidate-targets and --candidate-grids name no variant") }
            sweep.variants = variants
            sweep.resamples = resamples
            sweep.seed = seed
            let report = try sweep.run(
                detector: detector, tuning: (.coco(tuning), tuningImages), test: (.coco(test), images), mapPath: mapPath)
            if json {
                try printJSON(report)
            } else {
                print(NMSSweep.table(report))
            }
        }
    }
}
