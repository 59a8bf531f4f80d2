import Detection
import Engine
import Explain
import Foundation
import Runner
import Testing
import Vision
import WeightsIO

/// The compact maps file: what it stores, how close the rebuilt map is to the float32 one, and what it refuses.
struct MapsFileTests {
    /// A map on a 20x30 grid that is zero except around (row 6, column 11), as the reversed head's windows make them.
    static func localizedMap() -> HeatMap {
        var values = [Float](repeating: 0, count: 20 * 30)
        for r in 3..<10 {
            for c in 8..<15 { values[r * 30 + c] = 0.037 * Float(1 + (r * 7 + c * 3) % 11) }
        }
        return HeatMap(
            grid: Tensor(shape: [20, 30], values: values), stride: (8, 8), inputSize: ImageSize(height: 160, width: 240),
            originalSize: ImageSize(height: 333, width: 500))
    }

    /// A map with values everywhere spanning five orders of magnitude, as the exact path makes them.
    static func spreadMap() -> HeatMap {
        let values = (0..<(20 * 30)).map { Float(1e-5) * pow(1.03, Float(($0 * 37) % 400)) }
        return HeatMap(
            grid: Tensor(shape: [20, 30], values: values), stride: (8, 8), inputSize: ImageSize(height: 160, width: 240),
            originalSize: ImageSize(height: 333, width: 500))
    }

    static func file(_ maps: [ExplanationTarget: HeatMap]) -> MapsFile {
        let detection = Detection(box: Box(64, 24, 120, 80), score: 0.75, label: 2, candidate: 0)
        return MapsFile(
            image: ImageSize(height: 333, width: 500), targets: [.score, .x1], detections: [(detection, 1)], maps: [maps],
            classNames: ClassNames(names: ["__background__", "person", "car"]))
    }

    @Test func rebuildsTheRawMapWithinFloat16PrecisionAndCropsWhereItIsZero() throws {
        let maps: [ExplanationTarget: HeatMap] = [.score: Self.localizedMap(), .x1: Self.spreadMap()]
        let bytes = try Self.file(maps).encoded()
        let file = try MapsFile(bytes: bytes, file: "maps.safetensors")
        #expect(file == Self.file(maps), "decoding gives back what was encoded")
        let entry = try #require(file.detections.first)
        #expect(entry.labelName == "car" && entry.level == 1 && entry.stride == (8, 8) && entry.gridRows == 20 && entry.gridColumns == 30)
        let score = try #require(entry.maps[.score])
        #expect(score.row == 3 && score.column == 8 && score.rows == 7 && score.columns == 7, "the crop is the non-zero rectangle")
        #expect(bytes.count < 2 * (49 + 600) + 1200, "float16 values of the crop and of the whole spread map, plus the header")
        for (target, map) in maps {
            // What `odam explain --raw` writes: the raw grid map resized to the image, before normalization.
            let expected = map.raw.reshaped([1, 1, 20, 30]).interpolated(size: (333, 500), mode: .bilinear(alignCorners: false)).scalars
            let rebuilt = try file.imageMap(rank: 0, target: target.rawValue).scalars
            let range = expected.max()! - expected.min()!
            let worst = zip(rebuilt, expected).map { abs($0 - $1) }.max()!
            #expect(worst <= range / 2048, "\(target): rebuilt within 1/2048 of the range (\(worst / range))")
            let normalized = try file.normalizedMap(rank: 0, target: target.rawValue).scalars
            let normalizedWorst = zip(normalized, map.normalized.scalars).map { abs($0 - $1) }.max()!
            #expect(normalizedWorst <= 1e-3, "\(target): normalized map to 1e-3 (\(normalizedWorst))")
        }
        // The combined map is the pixel-wise maximum of the normalized target maps.
        let combined = try file.normalizedMap(rank: 0, target: "combined").scalars
        let parts = try [file.normalizedMap(rank: 0, target: "score").scalars, file.normalizedMap(rank: 0, target: "x1").scalars]
        #expect(combined == zip(parts[0], parts[1]).map { max($0, $1) })
        #expect(throws: RunnerError.self) { try file.imageMap(rank: 1, target: "score") }
        #expect(throws: RunnerError.self) { try file.imageMap(rank: 0, target: "y2") }
    }

    @Test func anAllZeroMapIsOneZeroCell() throws {
        let zero = HeatMap(raw: Tensor(zeros: [4, 5]), imageSize: ImageSize(height: 40, width: 50), stride: (10, 10))
        let file = try MapsFile(bytes: Self.file([.score: zero, .x1: zero]).encoded(), file: "zero")
        #expect(file.detections[0].maps[.score] == MapsFile.CroppedMap(row: 0, column: 0, rows: 1, columns: 1, scale: 0, values: [0]))
        #expect(try file.imageMap(rank: 0, target: "score").scalars.allSatisfy { $0 == 0 })
    }

    /// A hostile or damaged file is refused with the file's name and what is wrong, never read out of bounds.
    @Test func refusesFilesWhoseCropsDoNotFitOrWhoseFormatIsOther() throws {
        let good = try Self.file([.score: Self.localizedMap(), .x1: Self.spreadMap()]).encoded()
        var (tensors, metadata) = try SafeTensors.read(bytes: good, file: "good")
        func refusal(_ tensors: [String: StoredTensor], _ metadata: [String: String]) throws -> String {
            do {
                _ = try MapsFile(bytes: try SafeTensors.encode(tensors, metadata: metadata), file: "bad.safetensors")
                return "accepted"
            } catch let error as RunnerError {
                return error.description
            }
        }
        var shifted = metadata
        shifted["detections"] = metadata["detections"]!.replacingOccurrences(of: "\"offset\":[3,8]", with: "\"offset\":[18,8]")
        #expect(shifted != metadata)
        #expect(try refusal(tensors, shifted).contains("bad.safetensors: d0.score: crop [7, 7] at [18, 8] does not fit the grid [20, 30]"))
        var huge = metadata
        huge["detections"] = metadata["detections"]!.replacingOccurrences(of: "\"grid\":[20,30]", with: "\"grid\":[4611686018427387904,4]")
        #expect(try refusal(tensors, huge).contains("box, stride or grid malformed"))
        var old = metadata
        old["format"] = "odam heat maps: d{rank}.{target}, uint8 [height, width], the min-max normalized map times 255"
        #expect(try refusal(tensors, old).contains("not an odam maps file of format odam-maps/2"))
        tensors["d0.x1"] = StoredTensor(dtype: .float32, shape: [1], bytes: [0, 0, 0, 0])
        #expect(try refusal(tensors, metadata).contains("d0.x1: missing, or not a float16 [rows, columns] tensor"))
        metadata["width"] = "-3"
        #expect(try refusal(tensors, metadata).contains("width and height"))
        #expect(throws: WeightsError.self) { _ = try MapsFile(bytes: Array(good.prefix(40)), file: "truncated") }
    }
}
