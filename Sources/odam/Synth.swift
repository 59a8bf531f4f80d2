import ArgumentParser
import Foundation
import Synthesis
import Vision

extension Odam {
    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate the synthetic crowd benchmark: train and val splits as COCO datasets.",
            discussion: """
                Writes OUT/train (COUNT scenes, seed SEED) and OUT/val (COUNT/5 scenes, at least 1, seed SEED + 1), each \
                with images/NNNNNN.png and annotations.json. The same arguments always give the same files.
                """)

        @Option(help: "Output folder.") var out: String
        @Option(help: "Training scenes (val gets a fifth, at least 1).") var count: Int
        @Option(help: "Seed of the training split; the val split uses SEED + 1.") var seed: UInt64 = 1
        @Option(help: "Share of crowd scenes, 0 to 1.") var crowd = 0.5
        @Option(help: "Image size, WxH.") var size = "320x320"
        @Option(help: "A folder of JPEG/PNG images whose crops serve as backgrounds too.") var textures: String?

        func run() throws {
            let parts = size.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] >= 32, parts[1] >= 32 else {
                throw ValidationError("--size \(size): expected WxH, each at least 32")
            }
            guard (0...1).contains(crowd) else { throw ValidationError("--crowd \(crowd): expected a share from 0 to 1") }
            guard count > 0 else { throw ValidationError("--count must be positive") }
            var textureImages: [RGBImage] = []
            if let textures {
                let names = try FileManager.default.contentsOfDirectory(atPath: textures).filter {
                    ["png", "jpg", "jpeg"].contains(($0 as NSString).pathExtension.lowercased())
                }.sorted()
                textureImages = try names.map { try ImageCodec().decode(contentsOf: textures + "/" + $0) }
            }
            let generator = SceneGenerator(width: parts[0], height: parts[1], crowdFraction: crowd, textures: textureImages)
            for (split, scenes, splitSeed) in [("train", count, seed), ("val", max(count / 5, 1), seed + 1)] {
                let objects = try SyntheticDataset.write(directory: out + "/" + split, count: scenes, seed: splitSeed, generator: generator)
                { done in
                    if done % 100 == 0 || done == scenes {
                        FileHandle.standardError.write(Data("\r\(split): \(done)/\(scenes) scenes".utf8))
                    }
                }
                FileHandle.standardError.write(Data("\n".utf8))
                print("\(out)/\(split): \(scenes) scenes, \(objects) objects")
            }
        }
    }
}
