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
extension SSDLiteExplainer: PredictionExplainer {}

/// Which explainer serves a detector.
public enum Explainers {
    /// The exact path (autograd through the head) for any of odam's detectors.
    /// `nil` where the detector has no such explainer or the feature source does not apply to it (RoI features are
    /// Faster R-CNN's). `seedsPerPass` overrides the explainer's default batch of seeds per backward pass.
    /// The map a detector's predictions are explained on by default: the prediction's FPN level, or for SSDLite the
    /// first (19x19) feature map, since its later maps shrink to a single cell.
    public static func defaultFeature(for detector: any Detector) -> FeatureSource {
        detector is SSDLite ? .backbone(stage: 0) : .predictionLevel
    }

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
        case let ssd as SSDLite:
            // The prediction's own map, or (backbone:K, any K) the first 19x19 map every later one derives from.
            feature == .roiFeatures
                ? nil : SSDLiteExplainer(detector: ssd, seedsPerPass: seedsPerPass ?? 8, method: method, feature: feature)
        default: nil
        }
    }

    /// Plain autograd: the exact path one seed per backward pass, each gradient taken all the way to the feature map
    /// (FCOS's first tower convolution not folded into the map): what the runner's maps are checked against.
    public static func plainAutograd(for detector: any Detector, feature: FeatureSource) -> (any PredictionExplainer)? {
        guard var fcos = exact(for: detector, feature: feature, seedsPerPass: 1) as? FCOSExplainer else {
            return exact(for: detector, feature: feature, seedsPerPass: 1)
        }
        fcos.folding = false
        return fcos
    }
}
