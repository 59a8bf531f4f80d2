import ArgumentParser
import Foundation
import Training

extension Odam {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train an FCOS detector (optionally with Odam-Train) from a JSON config.",
            discussion: """
                Checkpoints (weights, optimizer state, iteration) go to OUTPUT/checkpoint.safetensors every \
                checkpointEvery iterations and after each epoch; --resume continues exactly. After each epoch the val \
                split's AP, AP50 and AP50 on sparse and crowd scenes are printed and appended to OUTPUT/metrics.jsonl. \
                The final weights are OUTPUT/model.safetensors with OUTPUT/model.json beside them.
                """)

        @OptionGroup var compute: ComputeOptions
        @Option(help: "The training config (JSON).") var config: String
        @Option(help: "A checkpoint to continue from (default: OUTPUT/checkpoint.safetensors if it exists).") var resume: String?
        @Flag(help: "Start from scratch even if OUTPUT/checkpoint.safetensors exists.") var restart = false

        func run() throws {
            compute.apply()
            let settings = try TrainingConfig.load(contentsOf: config)
            let trainer = try Trainer(config: settings)
            let existing = FileManager.default.fileExists(atPath: trainer.checkpointPath) ? trainer.checkpointPath : nil
            if let from = resume ?? (restart ? nil : existing) {
                try trainer.resume(from: from)
                print("resumed from \(from) at iteration \(trainer.iteration) of \(trainer.totalIterations)")
            }
            let interactive = isatty(2) != 0
            try trainer.run(
                progress: { p in
                    let terms = p.losses.keys.sorted().map { "\($0) \(String(format: "%.3f", p.losses[$0]!))" }.joined(separator: ", ")
                    let filled = Int(30 * Double(p.iteration) / Double(p.iterations))
                    let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: 30 - filled)
                    let line =
                        "epoch \(p.epoch) [\(bar)] \(p.iteration)/\(p.iterations) \(terms) | lr \(String(format: "%.4g", p.learningRate)) | "
                        + "\(String(format: "%.1f", p.imagesPerSecond)) img/s | ETA \(Self.duration(p.secondsLeft))"
                    if interactive {
                        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
                    } else if p.iteration % 20 == 0 || p.iteration == p.iterations {
                        FileHandle.standardError.write(Data((line + "\n").utf8))
                    }
                },
                epochDone: { epoch, metrics in
                    if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
                    let values = metrics.keys.sorted().map { "\($0) \(String(format: "%.4f", metrics[$0]!))" }.joined(separator: ", ")
                    print("epoch \(epoch): \(values)")
                })
            print("weights: \(settings.output)/model.safetensors, spec: \(settings.output)/model.json")
        }

        static func duration(_ seconds: Double) -> String {
            let s = Int(seconds.rounded())
            return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
        }
    }
}
