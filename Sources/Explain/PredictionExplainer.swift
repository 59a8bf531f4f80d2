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
    public static func exact(for detector: any Detector, method: HeatMapMethod = .odam(), edges: EdgeTargets = .decodedBox)
        -> (any PredictionExplainer)?
    {
        switch detector {
        case let fcos as FCOS: FCOSExplainer(detector: fcos, method: method)
        case let retinaNet as RetinaNet: RetinaNetExplainer(detector: retinaNet, method: method, edges: edges)
        case let fasterRCNN as FasterRCNN: FasterRCNNExplainer(detector: fasterRCNN, method: method, edges: edges)
        default: nil
        }
    }
}
