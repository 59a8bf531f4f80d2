public import Detection

/// Computes heat maps of chosen predictions of one forward pass.
public protocol PredictionExplainer {
    /// Heat maps of `predictions` (indices into `result.candidates`) for each target, in the order given.
    func explain(trace: ForwardTrace, result: ImageDetections, image: Int, predictions: [Int], targets: [ExplanationTarget])
        -> [[ExplanationTarget: HeatMap]]
}

extension FCOSExplainer: PredictionExplainer {}
extension FCOSReversedHead: PredictionExplainer {}
extension RetinaNetExplainer: PredictionExplainer {}
extension FasterRCNNExplainer: PredictionExplainer {}

/// Which explainer serves a detector.
public enum Explainers {
    /// The exact path (autograd through the head) for any of odam's detectors.
    /// `nil` where the detector has no such explainer or the feature source does not apply to it (RoI features are
    /// Faster R-CNN's). `seedsPerPass` overrides the explainer's default batch of seeds per backward pass.
    public static func exact(
        for detector: any Detector, method: HeatMapMethod = .odam(), edges: EdgeTargets = .decodedBox,
        feature: FeatureSource = .predictionLevel, seedsPerPass: Int? = nil
    ) -> (any PredictionExplainer)? {
        switch detector {
        case let fcos as FCOS:
            feature == .roiFeatures
                ? nil : FCOSExplainer(detector: fcos, seedsPerPass: seedsPerPass ?? 8, method: method, feature: feature)
        case let retinaNet as RetinaNet:
            feature == .roiFeatures
                ? nil
                : RetinaNetExplainer(
                    detector: retinaNet, seedsPerPass: seedsPerPass ?? 8, method: method, edges: edges, feature: feature)
        case let fasterRCNN as FasterRCNN:
            FasterRCNNExplainer(
                detector: fasterRCNN, seedsPerPass: seedsPerPass ?? 16, method: method, edges: edges, feature: feature)
        default: nil
        }
    }
}
