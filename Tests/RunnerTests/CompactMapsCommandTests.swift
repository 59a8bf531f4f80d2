import Detection
import Engine
import Foundation
import Postgres
import Processes
import Runner
import ServiceTestSupport
import TestSupport
import Testing
import Vision

/// The maps the main job stores, read back as users do: `odam maps show` by file and by key, the README's Python
/// reader, and against `odam explain --raw` on the same photos with the same model.
struct CompactMapsCommandTests {
    /// A float32 `.npy` as odam writes them (format 1.0, little-endian, C order): its shape and values.
    static func readNumpy(_ path: String) throws -> (shape: [Int], values: [Float]) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "\(header)")
        let shapeText = header.split(separator: "(")[1].split(separator: ")")[0]
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let values = bytes[(10 + headerLength)...].withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
        }
        return (shape, values)
    }

    @Test func storedMapsAreCompactAndRebuildWhatExplainWrites() throws {
        let photos = ["astronaut.png", "camera.png"]
        let scratch = try RunFolder("compact-maps", photos: photos)
        defer { scratch.remove() }
        let folder = scratch.path
        let run = try OdamBinary.run(["run", "photos", "--workers", "1", "--migrations", Repository.migrations], in: folder)
        #expect(run.status == 0, "\(run.output)")

        let python = Repository.path(".venv-s3/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestDependencyError("no \(python): Tools/setup --tests installs numpy and safetensors there")
        }
        var compared = 0
        for (index, name) in photos.enumerated() {
            let key = "job1/\(index + 1)-\(name)/maps.safetensors"
            let path = folder + "/.odam/objects/" + key
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let file = try MapsFile(bytes: bytes, file: path)
            let image = try ImageCodec().decode(contentsOf: folder + "/photos/" + name)
            #expect(file.width == image.width && file.height == image.height && !file.detections.isEmpty)
            // The format this replaced: six uint8 maps at the image's size per detection.
            let before = 6 * image.width * image.height
            let perDetection = bytes.count / file.detections.count
            #expect(perDetection * 50 <= before, "\(name): \(perDetection) bytes a detection against \(before) before")

            // `odam explain --raw` on the same photo: every detection the run kept that explain also explains has
            // the same maps, to 1e-3 of their range after normalization.
            let out = folder + "/explain-\(index)"
            let explain = try OdamBinary.run(
                ["explain", "photos/" + name, "--targets", "score,x1,y1,x2,y2", "--raw", "--out", out], in: folder)
            #expect(explain.status == 0, "\(explain.output)")
            let stem = (name as NSString).deletingPathExtension
            let explainIndex = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/\(stem)/index.json")))
                    as? [String: Any])
            let explained = try #require(explainIndex["predictions"] as? [[String: Any]])
            for (rank, entry) in file.detections.enumerated() {
                let box = [entry.box.x1, entry.box.y1, entry.box.x2, entry.box.y2].map(Double.init)
                guard
                    let match = explained.first(where: { prediction in
                        prediction["label"] as? Int == entry.label
                            && zip((prediction["box"] as? [Double]) ?? [], box).allSatisfy { abs($0 - $1) < 1e-3 }
                    }), let prediction = match["index"] as? Int
                else { continue }
                for target in ["score", "x1", "y1", "x2", "y2"] {
                    let reference = try Self.readNumpy("\(out)/\(stem)/prediction\(prediction)_\(target).npy")
                    #expect(reference.shape == [image.height, image.width])
                    let rebuilt = try file.normalizedMap(rank: rank, target: target).scalars
                    let worst = zip(rebuilt, reference.values).map { abs($0 - $1) }.max() ?? 1
                    #expect(worst <= 1e-3, "\(name) d\(rank).\(target): \(worst) from explain --raw")
                }
                compared += 1
            }

            // The README's Python reader rebuilds the same raw map.
            let npy = folder + "/python-\(index).npy"
            let status = try ChildProcess.run(
                [python, Repository.path("Tools/odam_maps.py"), path, "0", "score", npy], output: folder + "/python.log")
            #expect(status == 0, "\((try? String(contentsOfFile: folder + "/python.log", encoding: .utf8)) ?? "")")
            let fromPython = try Self.readNumpy(npy)
            let raw = try file.imageMap(rank: 0, target: "score").scalars
            let worst = zip(fromPython.values, raw).map { abs($0 - $1) }.max() ?? 1
            #expect(
                fromPython.shape == [image.height, image.width] && worst <= 1e-5 * (raw.max() ?? 1),
                "\(worst) of \(raw.max() ?? 0); \(fromPython.values.count) values, first \(fromPython.values.prefix(3)) against \(raw.prefix(3))"
            )
        }
        #expect(compared >= 2, "detections kept by the run and explained by odam explain: \(compared)")

        // `odam maps show` by object key (found through the database) and by file, with a PNG.
        let byKey = try OdamBinary.run(["maps", "show", "job1/1-astronaut.png/maps.safetensors"], in: folder)
        #expect(byKey.status == 0 && byKey.output.contains("odam-maps/2, 512x512 image"), "\(byKey.output)")
        let png = folder + "/d0.png"
        let shown = try OdamBinary.run(
            [
                "maps", "show", ".odam/objects/job1/1-astronaut.png/maps.safetensors", "--rank", "0", "--target", "combined", "--png", png,
                "--image", "photos/astronaut.png",
            ], in: folder)
        #expect(shown.status == 0 && shown.output.contains("d0.combined: 512x512"), "\(shown.output)")
        let drawn = try ImageCodec().decode(contentsOf: png)
        #expect(drawn.width == 512 && drawn.height == 512)
        let unknown = try OdamBinary.run(["maps", "show", "job1/none/maps.safetensors"], in: folder)
        #expect(unknown.status != 0 && unknown.output.contains("neither a file nor an object key"), "\(unknown.output)")
    }
}
