import ArgumentParser
import Detection
import Engine
import Explain
import Foundation
import ObjectStore
import Runner
import Vision

extension Odam {
    struct Maps: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the heat-map files the runner stores.", subcommands: [Show.self])
    }
}

extension Odam.Maps {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A maps file's detections, one map's values, or one map as a PNG.",
            discussion: """
                FILE is a local maps.safetensors; otherwise KEY is looked up in the job database (the maps_key column of \
                detections) and read from its job's store. Without --rank: one line per detection. With --rank: the \
                map of --target (score, logit, x1, y1, x2, y2 or combined) at the image's resolution, its raw maximum \
                and peak; --png writes it jet-colored (over --image when given) with the box and caption drawn.
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "A maps file's path, or its object key.") var source: String
        @Option(help: "The detection's rank in the file.") var rank: Int?
        @Option(help: "score, logit, x1, y1, x2, y2 or combined.") var target = "combined"
        @Option(help: "Write the map as a PNG here (needs --rank).") var png: String?
        @Option(help: "Draw the PNG over this image (the one the file explains).") var image: String?
        @Option(help: "Write the map at the image's resolution as float32 .npy here (needs --rank).") var npy: String?
        @Flag(help: "Print the file's description as JSON.") var json = false

        func run() throws {
            let (bytes, name) = try read()
            let file = try MapsFile(bytes: bytes, file: name)
            guard let rank else {
                guard png == nil, npy == nil else { throw ValidationError("--png and --npy write one map: give --rank") }
                print(json ? try Self.json(file, bytes: bytes.count) : Self.table(file, name: name, bytes: bytes.count))
                return
            }
            let normalized = try file.normalizedMap(rank: rank, target: target)
            let raw = target == "combined" ? normalized : try file.imageMap(rank: rank, target: target)
            let values = raw.scalars
            let peak = values.indices.max { values[$0] < values[$1] } ?? 0
            print(
                "d\(rank).\(target): \(file.width)x\(file.height), raw maximum \(values.max() ?? 0) at x \(peak % file.width), y \(peak / file.width)"
            )
            if let npy { try write(NumpyFile.encode(raw), to: npy) }
            if let png {
                let entry = file.detections[rank]
                var base = RGBImage(width: file.width, height: file.height, pixels: ExplanationWriter.jet(normalized))
                if let image {
                    let photo = try ImageCodec().decode(contentsOf: image)
                    guard photo.width == file.width, photo.height == file.height else {
                        throw ValidationError(
                            "--image \(image) is \(photo.width)x\(photo.height); the maps are \(file.width)x\(file.height)")
                    }
                    base = RGBImage(width: file.width, height: file.height, pixels: ExplanationWriter.overlay(photo, normalized))
                }
                base.annotate(
                    box: (entry.box.x1, entry.box.y1, entry.box.x2, entry.box.y2),
                    caption: ExplanationWriter.caption(labelName: entry.labelName ?? "label \(entry.label)", score: entry.score))
                try write(ImageCodec.encodePNG(pixels: base.pixels, width: base.width, height: base.height, channels: 3), to: png)
            }
        }

        /// The file's bytes and a name for errors: a local file, else the object under that key in its job's store.
        func read() throws -> ([UInt8], String) {
            if FileManager.default.fileExists(atPath: source) {
                guard let data = FileManager.default.contents(atPath: source) else { throw CommandFailure("\(source): cannot read") }
                return ([UInt8](data), source)
            }
            return try databaseOptions.session { connectionString in
                let jobs = try JobStore(connecting: connectionString)
                guard let job = try jobs.jobOfObject(key: source) else {
                    throw CommandFailure("\(source): neither a file nor an object key of a job (see detections.maps_key)")
                }
                let store = try JobResources.store(for: try jobs.job(job).spec.output)
                guard let bytes = try store.get(source) else { throw CommandFailure("\(source): job \(job)'s store has no such object") }
                return (bytes, store.url(for: source))
            }
        }

        func write(_ bytes: [UInt8], to path: String) throws {
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw CommandFailure("\(path): cannot write") }
        }

        static func table(_ file: MapsFile, name: String, bytes: Int) -> String {
            var lines = [
                "\(name): \(MapsFile.format), \(file.width)x\(file.height) image, \(file.detections.count) detections, "
                    + "targets \(file.targets.map(\.rawValue).joined(separator: ",")), \(bytes) bytes"
            ]
            lines.append("rank  class             score  box (x1 y1 x2 y2)            level  grid     cells stored")
            for (rank, entry) in file.detections.enumerated() {
                let box = [entry.box.x1, entry.box.y1, entry.box.x2, entry.box.y2].map { String(format: "%.1f", $0) }.joined(separator: " ")
                let cells = entry.maps.values.map { $0.rows * $0.columns }.reduce(0, +)
                lines.append(
                    String(rank).padding(toLength: 6, withPad: " ", startingAt: 0)
                        + (entry.labelName ?? "label \(entry.label)").padding(toLength: 18, withPad: " ", startingAt: 0)
                        + String(format: "%.3f  ", entry.score) + box.padding(toLength: 29, withPad: " ", startingAt: 0)
                        + String(entry.level).padding(toLength: 7, withPad: " ", startingAt: 0)
                        + "\(entry.gridRows)x\(entry.gridColumns)".padding(toLength: 9, withPad: " ", startingAt: 0) + String(cells))
            }
            return lines.joined(separator: "\n")
        }

        static func json(_ file: MapsFile, bytes: Int) throws -> String {
            let detections: [[String: Any]] = file.detections.enumerated().map { rank, entry in
                [
                    "rank": rank, "box": [entry.box.x1, entry.box.y1, entry.box.x2, entry.box.y2].map(Double.init),
                    "score": Double(entry.score), "label": entry.label, "label_name": entry.labelName ?? NSNull(), "level": entry.level,
                    "grid": [entry.gridRows, entry.gridColumns],
                    "maps": Dictionary(
                        uniqueKeysWithValues: entry.maps.map { target, map in
                            (
                                target.rawValue,
                                ["offset": [map.row, map.column], "shape": [map.rows, map.columns], "scale": Double(map.scale)]
                                    as [String: Any]
                            )
                        }),
                ]
            }
            let document: [String: Any] = [
                "format": MapsFile.format, "width": file.width, "height": file.height, "bytes": bytes,
                "targets": file.targets.map(\.rawValue), "detections": detections,
            ]
            let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        }
    }
}
