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
