import Detection
import Foundation
import Synthesis
import Training

/// `odam bench train`: images per second of training steps (forward, loss, backward, SGD) of a small FCOS on
/// synthetic scenes, the batch prepared beforehand; with and without Odam-Train.
public enum TrainBenchmark {
    public struct Row: Sendable, Codable {
        public var odamTrain: Bool
        public var batchSize: Int
        public var size: Int
        public var secondsPerIteration: Double
        public var imagesPerSecond: Double
    }

    /// The default model's architecture (ResNet-18 at width 16, FPN and head at 64 channels, 4 labels).
    public static let modelJSON = """
        {"architecture": "fcos", "backbone": "resnet18", "baseWidth": 16, "fpnChannels": 64, "classCount": 4,
         "minSize": 320, "maxSize": 320, "normalization": "batchNorm"}
        """

    /// - Parameter odamMaps: Odam-Train's maps.
    public static func run(batchSize: Int, size: Int, iterations: Int, odamTrain: [Bool], odamMaps: OdamTrainSettings.Maps = .exact) throws
        -> [Row]
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("odam-bench-train-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SyntheticDataset.write(directory: directory, count: batchSize, seed: 11, generator: SceneGenerator(width: size, height: size))
        return try odamTrain.map { odam in
            let json = """
                {"model": \(modelJSON), "train": "\(directory)", "output": "\(directory)/run", "epochs": 1000,
                 "batchSize": \(batchSize), "minSizes": [\(size)], "maxSize": \(size), "warmupIterations": 0, "horizontalFlip": false
                 \(odam ? ", \"odamTrain\": {\"maps\": \"\(odamMaps.rawValue)\"}" : "")}
                """
            let trainer = try Trainer(config: try JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8)))
            let (batch, targets) = try trainer.batch(at: 0)
            let timing = Timing.measure(warmups: 2, runs: iterations) { blackHole(trainer.trainStep(batch: batch, targets: targets)) }
            return Row(
                odamTrain: odam, batchSize: batchSize, size: size, secondsPerIteration: timing.median,
                imagesPerSecond: Double(batchSize) / timing.median)
        }
    }

    public static func table(_ rows: [Row]) -> String {
        ([pad("training", 14) + pad("batch", 7) + pad("size", 6) + pad("s/iteration", 13) + "images/s"]
            + rows.map {
                pad($0.odamTrain ? "Odam-Train" : "FCOS", 14) + pad("\($0.batchSize)", 7) + pad("\($0.size)", 6)
                    + pad(fixed($0.secondsPerIteration, 3), 13) + fixed($0.imagesPerSecond, 1)
            }).joined(separator: "\n")
    }
}
