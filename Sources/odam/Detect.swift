import ArgumentParser
import Detection
import Engine
import Foundation
import Logging
import Vision

extension Odam {
    struct Detect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Detect objects in images; print one JSON line per detection.",
            discussion: """
                Each line: {"image": PATH, "box": [x1, y1, x2, y2], "score": S, "label": L, "label_name": NAME} (label_name when the model names its \
                classes) with the box in the original \
                image's pixels. An image that cannot be read gets {"image": PATH, "error": CAUSE} and a message on \
                standard error; the other images are still processed, and the exit status is 1.
                """)

        @OptionGroup var compute: ComputeOptions
        @OptionGroup var modelOptions: ModelOptions
        @Option(help: "Keep detections scoring above this (default: the model's own threshold).") var scoreThresh: Float?
        @Option(help: "Short side the image is resized to (default: the model's); SSDLite's is fixed.")
        var minSize: Int?
        @Option(help: "Longest side after resizing (default: the model's); SSDLite's is fixed.") var maxSize: Int?
        @Option(help: "Also write the detections as a COCO results JSON file.") var cocoResults: String?
        @Option(
            help:
                "With --coco-results: image and category ids from this COCO annotation file (images found by path, the longest tail matching a file_name)."
        )
        var annotations: String?
        @Option(help: "Refuse images with more pixels than this (decompression-bomb guard).") var maxPixels = ImageCodec
            .defaultMaximumPixels
        @Flag(help: "Rotate JPEGs as their EXIF orientation says.") var exifOrientation = false
        @Argument(help: "JPEG or PNG images.") var images: [String]

        func run() throws {
            compute.apply()
            var (spec, weightsPath) = try modelOptions.resolved()
            if let scoreThresh { spec.scoreThreshold = scoreThresh }
            try spec.resize(minSize: minSize, maxSize: maxSize)
            let detector = try spec.load(weights: weightsPath)
            let codec = ImageCodec(maximumPixels: maxPixels, appliesExifOrientation: exifOrientation)
            if annotations != nil, cocoResults == nil { throw ValidationError("--annotations numbers --coco-results: give both") }
            let groundTruth = try annotations.map { try COCOAnnotations(contentsOf: $0) }
            let (coco, failures, unmatched) = DetectionReport.detect(
                images: images, detector: detector, codec: codec,
                labelNames: try ClassNames(spec: spec, classCount: detector.classCount), annotations: groundTruth, line: { print($0) },
                failed: { Log.detect.error("\($0)") })
            if let annotations, !unmatched.isEmpty {
                Log.detect.warning(
                    "\(unmatched.count) images are not in \(annotations), left out of the COCO results: \(unmatched.prefix(5).joined(separator: ", "))"
                )
            }
            if let cocoResults {
                let data = try JSONSerialization.data(withJSONObject: coco, options: [.sortedKeys])
                guard FileManager.default.createFile(atPath: cocoResults, contents: data) else {
                    throw CommandFailure("\(cocoResults): cannot write the COCO results file")
                }
            }
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
