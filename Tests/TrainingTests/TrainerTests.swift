import Detection
import Engine
import Foundation
import NN
import Synthesis
import Testing
import Training

/// Training runs on a tiny synthetic set: a resumed run equals an uninterrupted one, and Odam-Train trains.
struct TrainerTests {
    static func config(_ directory: String, output: String, odam: Bool) throws -> TrainingConfig {
        let json = """
            {"model": {"architecture": "fcos", "backbone": "resnet18", "baseWidth": 8, "fpnChannels": 32, "classCount": 4,
                       "minSize": 64, "maxSize": 64, "scoreThreshold": 0.05},
             "train": "\(directory)", "output": "\(output)", "epochs": 2, "batchSize": 2, "learningRate": 0.01,
             "warmupIterations": 2, "milestones": [1], "minSizes": [56, 64], "maxSize": 64, "clipNorm": 10, "seed": 3,
             "checkpointEvery": 100 \(odam ? ", \"odamTrain\": {\"weight\": 1}" : "")}
            """
        return try JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8))
    }

    static let dataset: String = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("odam-train-data-\(getpid())").path
        _ = try! SyntheticDataset.write(directory: directory, count: 8, seed: 4, generator: SceneGenerator(width: 64, height: 64))
        return directory
    }()

    @Test func resumedRunEqualsUninterruptedRun() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("odam-train-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let straight = try Trainer(config: try Self.config(Self.dataset, output: scratch + "/a", odam: false))
        try straight.run(progress: { _ in }, epochDone: { _, _ in })
        #expect(straight.iteration == 8)
        #expect(FileManager.default.fileExists(atPath: scratch + "/a/model.safetensors"))

        let first = try Trainer(config: try Self.config(Self.dataset, output: scratch + "/b", odam: false))
        try first.run(until: 3, progress: { _ in }, epochDone: { _, _ in })
        try first.saveCheckpoint()
        let second = try Trainer(config: try Self.config(Self.dataset, output: scratch + "/b", odam: false))
        try second.resume(from: second.checkpointPath)
        #expect(second.iteration == 3)
        try second.run(progress: { _ in }, epochDone: { _, _ in })
        let a = straight.detector.stateDict, b = second.detector.stateDict
        #expect(Set(a.keys) == Set(b.keys))
        let differing = a.keys.filter { a[$0]!.scalars != b[$0]!.scalars }
        #expect(differing.isEmpty, "\(differing.count) tensors differ, for example \(differing.first ?? "")")
    }

    @Test func odamTrainAddsItsLossAndTrains() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("odam-train-odam-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let trainer = try Trainer(config: try Self.config(Self.dataset, output: scratch, odam: true))
        var seen: [[String: Float]] = []
        try trainer.run(until: 4, progress: { seen.append($0.losses) }, epochDone: { _, _ in })
        #expect(seen.count == 4)
        #expect(seen.allSatisfy { $0["odam"] != nil && $0.values.allSatisfy(\.isFinite) })
        #expect(seen.contains { ($0["odam"] ?? 0) > 0 }, "some batch had pairs to compare")
    }

    @Test func badConfigsNameTheProblem() throws {
        let missingClasses = #"{"model": {"architecture": "fcos"}, "train": "x", "output": "y", "epochs": 1}"#
        #expect(throws: ModelError.self) { try JSONDecoder().decode(TrainingConfig.self, from: Data(missingClasses.utf8)) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("odam-bad-config-\(getpid()).json").path
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect {
            try TrainingConfig.load(contentsOf: file)
        } throws: { "\($0)".contains(file) }
        // A misspelt key and a wrong type are named, with their path, not silently replaced by defaults.
        let base = #""model": {"architecture": "fcos", "classCount": 2}, "train": "x", "output": "y", "epochs": 1"#
        for (text, expected) in [
            ("{\(base), \"learningRat\": 0.1}", "'learningRat': unknown key"),
            ("{\(base), \"odamTrain\": {\"weigth\": 2}}", "'odamTrain.weigth': unknown key"),
            ("{\(base), \"batchSize\": \"eight\"}", "'batchSize' must be a whole number"),
        ] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            #expect {
                try TrainingConfig.load(contentsOf: file)
            } throws: { "\($0)".contains(file) && "\($0)".contains(expected) }
        }
        // Keys left out take the defaults, Odam-Train's included.
        try Data("{\(base), \"odamTrain\": {\"maps\": \"official\"}}".utf8).write(to: URL(fileURLWithPath: file))
        let config = try TrainingConfig.load(contentsOf: file)
        #expect(config.batchSize == 8 && config.learningRate == 0.01 && config.minSizes == [config.model.minSize])
        #expect(config.odamTrain?.maps == .official && config.odamTrain?.predictionsPerImage == OdamTrainSettings().predictionsPerImage)
    }
}
