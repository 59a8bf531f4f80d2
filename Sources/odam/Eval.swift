import ArgumentParser
import Detection
import Explain
import Foundation

extension Odam {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluations on annotated images.",
            subcommands: [DetectEval.self, NMSSweepEval.self, ExplainEval.self, COCOEval.self])
    }
}

extension Odam.Eval {
    struct ExplainEval: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Pointing game, energy pointing game, compactness, ODI and VEA of heat maps on a COCO-format file.")

        @OptionGroup var compute: ComputeOptions
        @Option(help: "COCO-format annotations (boxes; polygon or RLE masks).") var annotations: String
        @Option(help: "Folder of the annotated images.") var images: String
        @OptionGroup var modelOptions: ModelOptions
        @Option(help: "Methods, comma separated: odam, gradcam, gradcampp, drise.") var methods = "odam,gradcam,gradcampp"
        @Option(help: "IoU a detection needs with its ground truth to be explained (the protocol's 0.9).") var matchIou: Float = 0.9
        @Option(help: "Score a detection needs (the protocol's 0.1).") var scoreThresh: Float = 0.1
        @Option(help: "D-RISE masks per image (the protocol's 5000).") var driseMasks = 5000
        @Option(help: "D-RISE on the first N images only (one forward pass per mask).") var driseImages: Int?
        @Flag(help: "Also deletion and insertion curves (21 forward passes per object and method).") var faithfulness = false
        @Flag(help: "Also the sanity check: correlation with the maps of the model with a random head.") var sanity = false
        @Option(help: "Evaluate the first N images only.") var limitImages: Int?
        @Flag(help: "Print the results as one JSON object instead of a table.") var json = false

        func run() throws {
            compute.apply()
            var (spec, weightsPath) = try modelOptions.resolved()
            spec.scoreThreshold = min(spec.scoreThreshold ?? scoreThresh, scoreThresh)
            let detector = try spec.load(weights: weightsPath)
            let chosen = try methods.split(separator: ",").map { name -> (String, ExplanationEvaluation.Method) in
                if name == "drise" { return ("drise", .drise(DRISE(maskCount: driseMasks))) }
                guard let method = HeatMapMethod.named(String(name)) else { throw ValidationError("unknown method '\(name)'") }
                return (String(name), .gradient(method))
            }
            let coco = try COCOAnnotations(contentsOf: annotations).prefix(images: limitImages)
            var evaluation = ExplanationEvaluation(matchIoU: matchIou, scoreThreshold: scoreThresh)
            evaluation.faithfulness = faithfulness
            if let driseImages { evaluation.driseImages = driseImages }
            if sanity { evaluation.randomized = try RandomizationCheck.headRandomized(detector, spec: spec) }
            let rows = try evaluation.run(detector: detector, annotations: coco, imageDirectory: images, methods: chosen)
            print(json ? try EvaluationJSON.text(EvaluationJSON.explanation(rows)) : ExplanationEvaluation.table(rows))
        }
    }
}

extension Odam.Eval {
    struct DetectEval: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "detect",
            abstract: "AP, AP50, MR⁻², JI and crowd/sparse recall of NMS, Soft-NMS and Odam-NMS on annotated images.",
            discussion: """
                One forward pass per image; each NMS method then chooses the final detections among the same candidates. \
                --annotations is a COCO file or a CrowdHuman .odgt file (images as ID.jpg or ID.png). COCO AP/AR cover all \
                categories (detector labels are category ids); the crowd metrics cover --crowd-category. An image that \
                cannot be read is reported and left out of every metric.
                """)

        @OptionGroup var compute: ComputeOptions
        @Option(help: "COCO-format annotations (.json) or CrowdHuman annotations (.odgt).") var annotations: String
        @Option(help: "Folder of the annotated images.") var images: String
        @OptionGroup var modelOptions: ModelOptions
        @Option(help: "Methods, comma separated: nms, softnms, odam.") var nms = "nms,odam"
        @Option(help: "T_iou for NMS and Odam-NMS (default: the paper's, 0.5 for FCOS, 0.6 for Faster R-CNN).") var iou: Float?
        @Option(help: "Odam-NMS T_l: overlapping candidates whose maps correlate above this are duplicates.") var low: Float?
        @Option(help: "Odam-NMS T_h: candidates with little overlap whose maps correlate above this are duplicates.") var high: Float?
        @Option(help: "Soft-NMS decay: gaussian (s·exp(−IoU²/σ)) or linear (s·(1 − IoU) above --soft-iou).") var softDecay = "gaussian"
        @Option(help: "Soft-NMS Gaussian σ.") var softSigma: Float = 0.5
        @Option(help: "Soft-NMS linear decay's IoU threshold.") var softIou: Float = 0.3
        @Option(help: "Soft-NMS final score threshold.") var softScore: Float = 0.1
        @Option(help: "Candidate score threshold (default: the model's).") var scoreThresh: Float?
        @Option(help: "Candidates kept per level before NMS (default: the model's).") var topk: Int?
        @Option(help: "Detections kept per image.") var detections = 100
        @Option(help: "Category (COCO id, or detector label for .odgt) the crowd metrics score; default: 'person', else 1.")
        var crowdCategory: Int?
        @Option(help: "Short side the image is resized to (default: the model's); SSDLite's is fixed.")
        var minSize: Int?
        @Option(help: "Longest side after resizing (default: the model's); SSDLite's is fixed.") var maxSize: Int?
        @Option(help: "Evaluate the first N images only.") var limitImages: Int?
        @Option(
            help:
                "Odam-NMS's candidate maps: auto (FCOS: the reversed head on levels whose error estimates allow it, verified by samples, exact elsewhere; other detectors: exact), exact (autograd through the real head) or approximate (FCOS's reversed head, each level verified against exact samples)."
        )
        var mapPath: MapPath = .auto
        @Flag(help: "Print the results as one JSON object instead of a table.") var json = false

        func run() throws {
            compute.apply()
            var (spec, weightsPath) = try modelOptions.resolved()
            if let scoreThresh { spec.scoreThreshold = scoreThresh }
            if let topk { spec.topKCandidates = topk }
            try spec.resize(minSize: minSize, maxSize: maxSize)
            let detector = try spec.load(weights: weightsPath)
            var odam = OdamNMS.defaults(for: detector)
            if let iou { odam.iouThreshold = iou }
            if let low { odam.lowCorrelation = low }
            if let high { odam.highCorrelation = high }
            let methods = try nms.split(separator: ",").map { name -> SuppressionMethod in
                switch name {
                case "nms": return .nms(iouThreshold: odam.iouThreshold)
                case "softnms":
                    guard softDecay == "gaussian" || softDecay == "linear" else {
                        throw ValidationError("--soft-decay: '\(softDecay)' is neither gaussian nor linear")
                    }
                    let decay: SoftNMS.Decay = softDecay == "linear" ? .linear(iouThreshold: softIou) : .gaussian(sigma: softSigma)
                    return .softNMS(SoftNMS(decay: decay, scoreThreshold: softScore))
                case "odam": return .odam(odam)
                default: throw ValidationError("--nms: unknown method '\(name)' (nms, softnms, odam)")
                }
            }
            let groundTruth: DetectionEvaluation.GroundTruth
            var category = crowdCategory ?? 1
            if annotations.hasSuffix(".odgt") {
                groundTruth = .crowdHuman(Array(try CrowdHumanFile.readAnnotations(contentsOf: annotations).prefix(limitImages ?? Int.max)))
            } else {
                let coco = try COCOAnnotations(contentsOf: annotations).prefix(images: limitImages)
                if crowdCategory == nil, let person = coco.categories.first(where: { $0.value == "person" }) { category = person.key }
                groundTruth = .coco(coco)
            }
            let report = try DetectionEvaluation(crowdCategory: category, detectionsPerImage: detections).run(
                detector: detector, groundTruth: groundTruth, imageDirectory: images, methods: methods, mapPath: mapPath)
            print(json ? try EvaluationJSON.text(EvaluationJSON.detection(report)) : DetectionEvaluation.table(report))
        }
    }
}

extension Odam.Eval {
    struct COCOEval: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "coco",
            abstract: "COCO AP/AR of a results file against an annotation file, as pycocotools' COCOeval (bbox).",
            discussion: """
                RESULTS is a COCO results JSON ([{image_id, category_id, bbox, score}]), for example from odam results JOB \
                --format coco --annotations GT.json or odam detect --coco-results --annotations GT.json.
                """)

        @Argument(help: "The COCO results file.") var results: String
        @Option(help: "The COCO annotation file (ground truth).") var annotations: String
        @Flag(help: "Print the twelve numbers as one JSON object instead of pycocotools' table.") var json = false

        func run() throws {
            let summary = try COCOEvaluation().evaluate(
                groundTruth: try COCOAnnotations(contentsOf: annotations), results: try COCOResult.load(contentsOf: results))
            print(json ? try EvaluationJSON.text(EvaluationJSON.coco(summary)) : summary.table)
        }
    }
}
