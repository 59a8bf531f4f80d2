import Detection
import Foundation
import Testing

/// Finding annotated images by path: exact names, tails at folder boundaries, and names that are not unique.
struct COCOPathIndexTests {
    @Test func pathsMatchTheLongestTailAndAmbiguousNamesMatchNothing() throws {
        let file: [String: Any] = [
            "images": [
                ["id": 7, "file_name": "val/0001.jpg", "width": 1, "height": 1],
                ["id": 8, "file_name": "./train/0001.jpg", "width": 1, "height": 1],
                ["id": 9, "file_name": "street corner.png", "width": 1, "height": 1],
                ["id": 10, "file_name": "a/dup.png", "width": 1, "height": 1],
                ["id": 11, "file_name": "a/dup.png", "width": 1, "height": 1],
            ],
            "categories": [["id": 1, "name": "person"], ["id": 5, "name": "Cup"]], "annotations": [],
        ]
        let annotations = try COCOAnnotations(data: try JSONSerialization.data(withJSONObject: file), file: "gt.json")
        let index = COCOAnnotations.PathIndex(annotations)
        #expect(index.imageID(forPath: "/data/coco/val/0001.jpg") == 7)
        #expect(index.imageID(forPath: "train//0001.jpg") == 8)
        #expect(index.imageID(forPath: "0001.jpg") == nil, "a bare name that two folders hold is not guessed")
        #expect(index.imageID(forPath: "https://host/x/street corner.png") == 9)
        #expect(index.imageID(forPath: "b/a/dup.png") == nil, "two images with one name match neither")
        #expect(index.imageID(forPath: "val/0002.jpg") == nil)
        #expect(annotations.categoryID(label: 1, labelName: "person") == 1)
        #expect(annotations.categoryID(label: 41, labelName: "cup") == 5, "by name when the label is not a category id")
        #expect(annotations.categoryID(label: 41, labelName: nil) == 41)
    }
}
