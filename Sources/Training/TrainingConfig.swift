public import Detection
import Foundation
import SpecDecoding

/// What `odam train --config FILE` trains: a JSON file.
///
/// ```json
/// {"model": {"architecture": "fcos", "backbone": "resnet18", "baseWidth": 16, "fpnChannels": 64, "classCount": 4,
///            "minSize": 320, "maxSize": 320, "normalization": "batchNorm", "scoreThreshold": 0.05},
///  "train": "data/synth/train", "val": "data/synth/val", "output": "runs/default",
///  "epochs": 12, "batchSize": 8, "learningRate": 0.01, "warmupIterations": 300, "milestones": [8, 11],
///  "minSizes": [288, 320, 352], "maxSize": 352, "seed": 1, "odamTrain": {"weight": 1.0}}
/// ```
/// Relative paths are taken from the config file's folder.
public struct TrainingConfig: Decodable, Sendable {
    public var model: ModelSpec
    /// COCO dataset folders (`annotations.json` with image paths relative to the folder).
    public var train: String
    public var val: String?
    /// Where checkpoints, the final weights and the metrics go.
    public var output: String
    public var epochs: Int
    public var batchSize: Int = 8
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var weightDecay: Float = 1e-4
    public var warmupIterations: Int = 300
    public var warmupFactor: Float = 0.001
    /// Epochs at which the learning rate is multiplied by `gamma`.
    public var milestones: [Int] = []
    public var gamma: Float = 0.1
    /// Short sides the images are resized to, one chosen per batch (multi-scale training).
    public var minSizes: [Int] = []
    public var maxSize: Int?
    public var horizontalFlip: Bool = true
    /// Gradient clipping by total norm (none when absent).
    public var clipNorm: Float?
    public var seed: UInt64 = 1
    /// Odam-Train (paper Eq. 3); absent: plain FCOS training.
    public var odamTrain: OdamTrainSettings?
    /// Iterations between checkpoints (and always at the end of an epoch).
    public var checkpointEvery: Int = 200
    /// Validation images evaluated after each epoch (all when absent).
    public var valImages: Int?
    /// The training images used (all when absent), for short runs.
    public var trainImages: Int?
    /// How the FCOS loss assigns locations to objects: `torchvision` (default) or `quality` (the official ODAM code's).
    public var assignment = FCOSLoss.Assignment.torchvision

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, train, val, output, epochs, batchSize, learningRate, momentum, weightDecay, warmupIterations, warmupFactor
        case milestones, gamma, minSizes, maxSize, horizontalFlip, clipNorm, seed, odamTrain, checkpointEvery, valImages, trainImages
        case assignment
    }

    /// Decodes the config: `model`, `train`, `output` and `epochs` are required, every other key falls back to its
    /// default above; unknown keys are refused.
    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelSpec.self, forKey: .model)
        train = try c.decode(String.self, forKey: .train)
        output = try c.decode(String.self, forKey: .output)
        epochs = try c.decode(Int.self, forKey: .epochs)
        val = try c.value(.val, or: val)
        batchSize = try c.value(.batchSize, or: batchSize)
        learningRate = try c.value(.learningRate, or: learningRate)
        momentum = try c.value(.momentum, or: momentum)
        weightDecay = try c.value(.weightDecay, or: weightDecay)
        warmupIterations = try c.value(.warmupIterations, or: warmupIterations)
        warmupFactor = try c.value(.warmupFactor, or: warmupFactor)
        milestones = try c.value(.milestones, or: milestones)
        gamma = try c.value(.gamma, or: gamma)
        // Without minSizes, training uses the model's own short side.
        minSizes = try c.value(.minSizes, or: [model.minSize])
        maxSize = try c.value(.maxSize, or: maxSize)
        horizontalFlip = try c.value(.horizontalFlip, or: horizontalFlip)
        clipNorm = try c.value(.clipNorm, or: clipNorm)
        seed = try c.value(.seed, or: seed)
        odamTrain = try c.value(.odamTrain, or: odamTrain)
        checkpointEvery = try c.value(.checkpointEvery, or: checkpointEvery)
        valImages = try c.value(.valImages, or: valImages)
        trainImages = try c.value(.trainImages, or: trainImages)
        assignment = try c.value(.assignment, or: assignment)
        guard model.classCount != nil else { throw ModelError("the training config's model needs a classCount") }
        guard epochs > 0, batchSize > 0 else { throw ModelError("epochs and batchSize must be positive") }
    }

    /// Reads a config file; relative paths become relative to its folder.
    public static func load(contentsOf path: String) throws -> TrainingConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read the training config") }
        var config: TrainingConfig
        do { config = try JSONDecoder().decode(TrainingConfig.self, from: data) } catch let error as ModelError {
            throw ModelError("\(path): \(error.description)")
        } catch let error as DecodingError {
            throw ModelError("\(path)\(error.describedByKey())")
        } catch { throw ModelError("\(path): not a training config (\(error))") }
        let base = (path as NSString).deletingLastPathComponent
        func resolved(_ p: String) -> String { p.hasPrefix("/") || base.isEmpty ? p : base + "/" + p }
        config.train = resolved(config.train)
        config.val = config.val.map(resolved)
        config.output = resolved(config.output)
        return config
    }
}

/// Odam-Train's settings (paper Eq. 3, the official code's section 3).
public struct OdamTrainSettings: Codable, Sendable {
    /// The auxiliary loss's weight on the mean over a batch's images (the official FCOS code's 0.5 on the sum over two
    /// images is 1.0 here).
    public var weight: Float = 1
    /// One reference per ground-truth object (true, the fix), or one per image as the official code (false).
    public var perObjectReference: Bool = true
    /// Positive predictions per image in the loss, best IoU with their object first (the official code: 300).
    public var predictionsPerImage: Int = 64
    /// The maps the loss compares: `exact` (autograd through the real head, GroupNorm statistics included: ODAM as
    /// defined) or `official` (the official code's reversed head on 11x11 windows with GroupNorm frozen, far from
    /// exact on the coarse levels of small models; `odam bench explain` measures it).
    public var maps: Maps = .exact

    public enum Maps: String, Codable, Sendable { case exact, official }

    enum CodingKeys: String, CodingKey, CaseIterable { case weight, perObjectReference, predictionsPerImage, maps }

    /// The defaults above.
    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weight = try c.value(.weight, or: weight)
        perObjectReference = try c.value(.perObjectReference, or: perObjectReference)
        predictionsPerImage = try c.value(.predictionsPerImage, or: predictionsPerImage)
        maps = try c.value(.maps, or: maps)
    }
}
