import Detection
import Engine
import Foundation
import TestSupport
import Testing

struct COCOAnnotationsTests {
    @Test func readsBoxesAndDecodesMasksAsPycocotools() throws {
        let coco = try COCOAnnotations(contentsOf: fixturePath("coco_small.json", bundle: .module))
        let expected = try FixtureTensors(path: fixturePath("coco_masks.safetensors", bundle: .module))
        #expect(coco.images.map(\.fileName) == ["scene.png"])
        #expect(coco.categories == [1: "person", 2: "blob"])
        let image = coco.images[0]
        let annotations = coco.annotations(forImage: image.id)
        #expect(annotations.count == 3)
        #expect(annotations[1].isCrowd && annotations[1].ignore && !annotations[0].ignore)
        #expect(annotations[2].box == [30.2, 25.5, 30.2 + 25.1, 25.5 + 18.4])
        for annotation in annotations {
            let mask = COCOAnnotations.mask(annotation.segmentation!, height: image.height, width: image.width)
            let want = expected.indices(String(annotation.id)).values.map { $0 != 0 }
            if case .polygons = annotation.segmentation! {
                // pycocotools rasterizes polygons its own way; the two fills agree but for edge pixels.
                let intersection = zip(mask, want).filter { $0 && $1 }.count, union = zip(mask, want).filter { $0 || $1 }.count
                #expect(Double(intersection) / Double(union) > 0.9, "polygon mask IoU")
            } else {
                #expect(mask == want, "RLE mask of annotation \(annotation.id) decodes as pycocotools")
            }
        }
    }

    @Test func malformedFilesNameTheProblem() {
        #expect {
            try COCOAnnotations(data: Data(#"{"images": [{"file_name": "a.jpg"}]}"#.utf8), file: "bad.json")
        } throws: { error in
            "\(error)".contains("bad.json") && "\(error)".contains("images[0]")
        }
    }
}

/// Annotation files are untrusted: numbers that do not fit an Int, negative sizes and endless RLE counts are errors
/// that name the field, never a trap (Detection keeps Swift's checks).
struct HostileCOCOTests {
    @Test(arguments: [
        (#"{"images": [{"id": 1e300, "file_name": "a.png"}]}"#, "images[0].id"),
        (#"{"images": [{"id": 1, "file_name": "a.png", "width": 1.5}]}"#, "images[0].width"),
        (
            #"{"annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "segmentation": {"size": [-5, 10], "counts": [1]}}]}"#,
            "segmentation.size"
        ),
        (
            #"{"annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "segmentation": {"size": [4, 4], "counts": [3, -2]}}]}"#,
            "negative"
        ),
        (
            #"{"annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "segmentation": {"size": [4, 4], "counts": "oooooooooooooooo0"}}]}"#,
            "too long"
        ),
        (#"{"categories": [{"id": -1e20}]}"#, "categories[0].id"),
    ])
    func hostileNumbersAreErrors(json: String, field: String) {
        #expect {
            try COCOAnnotations(data: Data(json.utf8), file: "hostile.json")
        } throws: { error in
            "\(error)".contains("hostile.json") && "\(error)".contains(field)
        }
    }
}
