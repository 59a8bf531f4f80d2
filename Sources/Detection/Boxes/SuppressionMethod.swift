/// How the final detections are chosen among an image's candidates.
public enum SuppressionMethod: Sendable, Equatable {
    /// Class-wise NMS with torchvision's semantics.
    case nms(iouThreshold: Float)
    case softNMS(SoftNMS)
    /// Odam-NMS; needs the candidates' maps.
    case odam(OdamNMS)

    /// The method's name on the command line.
    public var name: String {
        switch self {
        case .nms: "nms"
        case .softNMS: "softnms"
        case .odam: "odam"
        }
    }
}

extension ImageDetections {
    /// The same candidates with the final detections chosen by `method` instead of the detector's own NMS, the best
    /// `limit` kept. `maps` (one per candidate) are required for Odam-NMS and ignored otherwise.
    public func suppressed(by method: SuppressionMethod, maps: CandidateMaps? = nil, limit: Int) -> ImageDetections {
        let boxes = candidates.flatMap(\.box), scores = candidates.map(\.score), labels = candidates.map(\.label)
        var kept: [Int]
        var keptScores: [Float]? = nil
        switch method {
        case .nms(let threshold):
            kept = BoxOps.batchedNMS(boxes, scores: scores, categories: labels, threshold: threshold)
        case .softNMS(let soft):
            let (indices, decayed) = soft(boxes: boxes, scores: scores, labels: labels)
            kept = indices
            keptScores = Array(decayed.prefix(limit))
        case .odam(let odam):
            guard let maps else { preconditionFailure("Odam-NMS needs the candidates' maps") }
            kept = odam(boxes: boxes, scores: scores, labels: labels, maps: maps)
        }
        kept = Array(kept.prefix(limit))
        return ImageDetections(candidates: candidates, kept: kept, keptScores: keptScores, inputSize: inputSize, originalSize: originalSize)
    }
}
