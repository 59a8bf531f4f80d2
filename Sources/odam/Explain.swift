import ArgumentParser
import Detection
import Engine
import Explain
import Foundation
import Logging
import Vision

extension GradientTransform: ExpressibleByArgument {}
extension EdgeTargets: ExpressibleByArgument {}

extension Odam {
    struct ExplainCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Write ODAM heat maps of every detection: gray and overlay PNGs and index.json per image.")

        @OptionGroup var compute: ComputeOptions
        @OptionGroup var modelOptions: ModelOptions
        @Option(help: "Output folder; one subfolder per image.") var out: String
        @Option(help: "Targets, comma separated: score, logit, x1, y1, x2, y2, combined.") var targets = "score,combined"
        @Option(help: "Explanation method: odam, gradcam or gradcampp (Grad-CAM++).") var method = "odam"
        @Option(help: "ODAM's Φ: none, or gaussian:SCALE (σ = SCALE × the box's size in cells).") var smoothing = "none"
        @Option(help: "ODAM's gradient variant: identity, positive, negative or absolute.") var gradient = GradientTransform.identity
        @Option(
            help:
                "Gradient path: exact (autograd through the head) or approximate (FCOS's reversed head on 11x11 windows, GroupNorm as frozen scales: far from exact on coarse levels)."
        )
        var path = MapPath.exact
        @Option(
            help:
                "Box-edge targets of RetinaNet and Faster R-CNN: decodedBox (−x1, −y1, x2, y2) or rawDeltas (dx, dy, dw, dh, as the official code)."
        )
        var edges = EdgeTargets.decodedBox
        @Option(
            help:
                "Feature map: level (the prediction's FPN level), backbone:K (backbone stage K feeding the FPN, 0 finest; SSDLite: its first 19x19 map), or roi (Faster R-CNN's RoI features projected into the proposal). Default: level, and backbone:0 for SSDLite, whose coarser maps shrink to one cell."
        )
        var feature: String?
        @Option(help: "Explain detections scoring above this (default: the model's threshold).") var scoreThresh: Float?
        @Option(help: "Explain at most this many detections per image, best first.") var limit: Int?
        @Flag(help: "Also write the float32 maps as .npy (image resolution and feature grid).") var raw = false
        @Option(help: "Refuse images with more pixels than this.") var maxPixels = ImageCodec.defaultMaximumPixels
        @Argument(help: "JPEG or PNG images.") var images: [String]

        func run() throws {
            compute.apply()
            guard var heatMapMethod = HeatMapMethod.named(method) else {
                throw ValidationError("--method \(method): expected odam, gradcam or gradcampp")
            }
            if case .odam = heatMapMethod {
                var phi = GradientSmoothing.none
                if smoothing.hasPrefix("gaussian:"), let scale = Float(smoothing.dropFirst("gaussian:".count)), scale > 0 {
                    phi = .gaussian(scale: scale)
                } else if smoothing != "none" {
                    throw ValidationError("--smoothing \(smoothing): expected none or gaussian:SCALE")
                }
                heatMapMethod = .odam(smoothing: phi, gradient: gradient)
            } else if path != .exact {
                throw ValidationError("--method \(method) uses whole-map gradients: use --path exact")
            }
            let names = targets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            let includesCombined = names.contains("combined")
            var chosen = try names.filter { $0 != "combined" }.map { name -> ExplanationTarget in
                guard let target = ExplanationTarget(rawValue: name) else { throw ValidationError("unknown target '\(name)'") }
                return target
            }
            if includesCombined { chosen = Array(Set(chosen + [.score, .x1, .y1, .x2, .y2])).sorted { $0.rawValue < $1.rawValue } }
            var (spec, weightsPath) = try modelOptions.resolved()
            if let scoreThresh { spec.scoreThreshold = scoreThresh }
            let detector = try spec.load(weights: weightsPath)
            guard let featureSource = feature.map({ FeatureSource(argument: $0) }) ?? Explainers.defaultFeature(for: detector) else {
                throw ValidationError("--feature \(feature ?? ""): expected level, backbone:K or roi")
            }
            let explainer: any PredictionExplainer
            var extras: ForwardTrace.Extra = []
            if path != .exact {
                guard featureSource == .predictionLevel else {
                    throw ValidationError("--path approximate explains the prediction's level only")
                }
                guard let fcos = detector as? FCOS else {
                    throw ValidationError("--path approximate: the reversed head is FCOS's; use --path exact")
                }
                extras = .towerLayers
                explainer = FCOSReversedHead(detector: fcos, method: heatMapMethod)
            } else {
                guard let exact = Explainers.exact(for: detector, method: heatMapMethod, edges: edges, feature: featureSource) else {
                    throw ValidationError("--feature roi: RoI features are Faster R-CNN's")
                }
                explainer = exact
            }
            let classNames = try ClassNames(spec: spec, classCount: detector.classCount)
            let failures = ExplanationWriter(directory: out, writesRaw: raw, classNames: classNames).explain(
                images: images, detector: detector, explainer: explainer, keeping: extras, targets: chosen,
                includesCombined: includesCombined, limit: limit, codec: ImageCodec(maximumPixels: maxPixels),
                written: { print($0) }, failed: { Log.explain.error("\($0)") })
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
