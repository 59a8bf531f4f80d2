public import Detection
import Engine
public import Vision

/// One image through the steps that come before suppression: the forward pass (keeping what the map path needs),
/// then the class-logit maps of the candidates above a score threshold, checked per level. The runner and
/// `odam eval detect` run this one sequence, then suppress with the methods they use.
public struct CandidatePass {
    public var trace: ForwardTrace
    /// The forward pass's result, its candidates in the network's numbering.
    public var result: ImageDetections
    /// The candidates considered: indices into `result.candidates` scoring above the threshold.
    public var eligible: [Int]
    /// The eligible candidates as a result of their own (numbered `0..<eligible.count`), what suppression sees.
    public var scored: ImageDetections
    /// The eligible candidates' maps, in `scored`'s numbering, in the first of the variants asked for; nil when no
    /// maps were asked for.
    public var maps: CandidateMaps? { mapsByVariant.first }
    /// The eligible candidates' maps in each variant asked for (empty when no maps were asked for).
    public var mapsByVariant: [CandidateMaps] = []
    /// How each level's candidate maps agreed with plain autograd.
    public var agreement: [VerifiedExplainer.LevelAgreement] = []
    public var forwardMilliseconds: Double
    /// Nil when no maps were asked for.
    public var candidateMapsMilliseconds: Double?

    /// Runs `detector` on `image`, keeping what `mapMaker`'s path needs; when `makesCandidateMaps`, the maps of every
    /// candidate scoring above `scoreThreshold` (every candidate when nil), in each of `variants`. Throws when the
    /// network's output is not finite.
    public init(
        image: RGBImage, detector: any Detector, mapMaker: DetectorMaps?, makesCandidateMaps: Bool = true, scoreThreshold: Float? = nil,
        variants: [CandidateVariant] = [.standard]
    ) throws {
        let extras = mapMaker?.traceExtras ?? []
        let ((trace, result), forward) = Stopwatch.time {
            withoutGradients { () -> (ForwardTrace, ImageDetections) in
                var stages = StageTimings()
                let output = detector.forward(detector.transform.batch([image.tensor()]), keeping: extras, timings: &stages)
                return (output.trace, output.results[0])
            }
        }
        try result.checkFinite()
        self.trace = trace
        self.result = result
        forwardMilliseconds = forward
        // Only candidates above the score threshold get maps: Odam-NMS decides each candidate by the higher-scored
        // ones it kept, so candidates at or below the threshold never change which ones above it are kept.
        eligible =
            scoreThreshold.map { threshold in result.candidates.indices.filter { result.candidates[$0].score > threshold } }
            ?? Array(result.candidates.indices)
        scored = ImageDetections(
            candidates: eligible.map { result.candidates[$0] }, kept: [], keptScores: nil, inputSize: result.inputSize,
            originalSize: result.originalSize)
        if let mapMaker, makesCandidateMaps {
            let eligible = eligible
            let (made, milliseconds) = Stopwatch.time {
                mapMaker.candidateMaps(trace: trace, result: result, predictions: eligible, variants: variants)
            }
            (mapsByVariant, agreement) = made
            candidateMapsMilliseconds = milliseconds
        }
    }

    /// The eligible candidates suppressed by `method`, at most `limit` kept (`detections` number candidates in
    /// `scored`; `eligible` maps them back to the forward pass's numbering).
    public func suppressed(by method: SuppressionMethod, limit: Int) -> ImageDetections {
        scored.suppressed(by: method, maps: maps, limit: limit)
    }
}
