import Engine
import Explain
import Foundation
import ObjectStore
import Runner
import Vision

extension JobPage {
    /// Why a detection gets a thumbnail: the best, and the two kinds a user debugging a detector looks for.
    public enum Pick: String, Sendable {
        case highestScore = "highest score"
        case lowestEnergy = "explanation outside its box (lowest energy in box)"
        case highestCorrelation = "map like a neighbour's (highest max correlation)"
    }

    /// The detections that get thumbnails: all when there are at most `limit`, else a third each of the highest
    /// scores, the lowest energy in box and the highest max correlation (each detection once).
    package static func picks(_ detections: [ExportedDetection], limit: Int) -> [Int: Pick] {
        guard detections.count > limit else { return Dictionary(uniqueKeysWithValues: detections.indices.map { ($0, .highestScore) }) }
        var chosen: [Int: Pick] = [:]
        let share = max(limit / 3, 1)
        let orders: [(Pick, [Int])] = [
            (.highestScore, detections.indices.sorted { detections[$0].score > detections[$1].score }),
            (
                .lowestEnergy,
                detections.indices.filter { detections[$0].energyInBox != nil }.sorted {
                    detections[$0].energyInBox! < detections[$1].energyInBox!
                }
            ),
            (
                .highestCorrelation,
                detections.indices.filter { detections[$0].maxCorrelation != nil }.sorted {
                    detections[$0].maxCorrelation! > detections[$1].maxCorrelation!
                }
            ),
        ]
        for (pick, order) in orders {
            var taken = 0
            for index in order where taken < share && chosen[index] == nil {
                chosen[index] = pick
                taken += 1
            }
        }
        return chosen
    }

    /// Draws the thumbnails of `chosen` into `folder` (`thumbs/{image id}-{rank}.png`: the combined map over the photo,
    /// the box, class name and score); each image is read and decoded once. Returns the file of each detection drawn
    /// and, for each that could not be, why.
    static func drawThumbnails(
        _ detections: [ExportedDetection], chosen: [Int: Pick], source: JobResources.ImageSource, store: any ObjectStore, folder: String,
        side: Int
    ) -> (files: [Int: String], problems: [Int: String]) {
        var files: [Int: String] = [:]
        var problems: [Int: String] = [:]
        let byImage = Dictionary(grouping: chosen.keys.sorted()) { detections[$0].imageID }
        for (_, indices) in byImage.sorted(by: { $0.key < $1.key }) {
            let first = detections[indices[0]]
            let photo: RGBImage
            let maps: MapsFile
            do {
                photo = try ImageCodec().decode(try source.fetch(first.path), file: first.path)
                guard let key = first.mapsKey else { throw RunnerError("the job stored no maps for it") }
                guard let bytes = try store.get(key) else { throw RunnerError("\(store.url(for: key)): no such object") }
                maps = try MapsFile(bytes: bytes, file: store.url(for: key))
            } catch {
                for index in indices { problems[index] = "\(error)" }
                continue
            }
            for index in indices {
                let detection = detections[index]
                do {
                    let combined = try maps.normalizedMap(rank: detection.rank, target: "combined")
                    guard combined.shape == [photo.height, photo.width] else {
                        throw RunnerError("the maps are \(maps.width)x\(maps.height), the photo \(photo.width)x\(photo.height)")
                    }
                    var thumbnail = RGBImage(width: photo.width, height: photo.height, pixels: ExplanationWriter.overlay(photo, combined))
                        .downscaled(toFit: side)
                    let scale = Float(thumbnail.width) / Float(photo.width)
                    thumbnail.annotate(
                        box: (
                            Float(detection.x1) * scale, Float(detection.y1) * scale, Float(detection.x2) * scale,
                            Float(detection.y2) * scale
                        ),
                        caption: ExplanationWriter.caption(
                            labelName: detection.labelName ?? "label \(detection.label)", score: Float(detection.score)))
                    let name = "thumbs/\(detection.imageID)-\(detection.rank).png"
                    let png = try ImageCodec.encodePNG(
                        pixels: thumbnail.pixels, width: thumbnail.width, height: thumbnail.height, channels: 3)
                    guard FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(png)) else {
                        throw RunnerError("\(folder)/\(name): cannot write")
                    }
                    files[index] = name
                } catch {
                    problems[index] = "\(error)"
                }
            }
        }
        return (files, problems)
    }
}
