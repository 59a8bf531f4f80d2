import Foundation
import Vision

/// Writes generated scenes as a COCO dataset: `images/NNNNNN.png` and `annotations.json` (boxes of the full extent,
/// visible-part masks as uncompressed RLE, `ignore` and `iscrowd` set on objects hidden beyond the threshold, and a
/// `scene` field of `crowd` or `sparse` on each image).
public enum SyntheticDataset {
    /// Writes scenes 0..<count of `seed` under `directory`; returns the number of objects written.
    @discardableResult
    public static func write(directory: String, count: Int, seed: UInt64, generator: SceneGenerator, progress: ((Int) -> Void)? = nil)
        throws -> Int
    {
        let manager = FileManager.default
        let imageDirectory = directory + "/images"
        try manager.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)
        var images: [[String: Any]] = [], annotations: [[String: Any]] = []
        for index in 0..<count {
            let scene = generator.scene(index: index, seed: seed)
            let name = String(format: "%06d.png", index)
            let png = try ImageCodec.encodePNG(
                pixels: scene.image.pixels, width: scene.image.width, height: scene.image.height, channels: 3)
            guard manager.createFile(atPath: imageDirectory + "/" + name, contents: Data(png)) else {
                throw SynthesisError("\(imageDirectory)/\(name): cannot write the image (is the disk full or the folder read-only?)")
            }
            images.append([
                "id": index + 1, "file_name": "images/" + name, "width": scene.image.width, "height": scene.image.height,
                "scene": scene.isCrowd ? "crowd" : "sparse",
            ])
            for object in scene.objects {
                let box = object.box.map(Double.init)
                annotations.append([
                    "id": annotations.count + 1, "image_id": index + 1, "category_id": object.sceneClass.rawValue,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "area": object.visiblePixels,
                    "segmentation": ["counts": object.visibleCounts, "size": [scene.image.height, scene.image.width]],
                    "iscrowd": object.ignored ? 1 : 0, "ignore": object.ignored ? 1 : 0,
                    "visibility": (Double(object.visibility) * 1000).rounded() / 1000,
                ])
            }
            progress?(index + 1)
        }
        let root: [String: Any] = [
            "info": ["description": "odam synthetic crowd benchmark", "seed": seed, "count": count],
            "images": images, "annotations": annotations,
            "categories": SceneClass.allCases.map { ["id": $0.rawValue, "name": $0.name] },
        ]
        let data = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
        guard manager.createFile(atPath: directory + "/annotations.json", contents: data) else {
            throw SynthesisError("\(directory)/annotations.json: cannot write the annotations")
        }
        return annotations.count
    }
}

/// A failure to write a synthetic dataset, naming the file and cause.
public struct SynthesisError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
