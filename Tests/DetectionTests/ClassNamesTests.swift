import Detection
import Foundation
import TestSupport
import Testing

struct ClassNamesTests {
    @Test func namesComeFromTheSpecThenCOCOForNinetyOneClassesElseLabelNumbers() throws {
        var spec = ModelSpec(architecture: .fcos)
        let coco = try ClassNames(spec: spec, classCount: 91)
        #expect(coco.name(of: 1) == "person" && coco.name(of: 90) == "toothbrush" && coco.name(of: 91) == "label 91")
        #expect(try ClassNames(spec: spec, classCount: 5).name(of: 3) == "label 3")
        spec.classNames = ["__background__", "person", "car", "sign"]
        #expect(try ClassNames(spec: spec, classCount: 4).name(of: 3) == "sign")
        #expect(throws: ModelError.self) { try ClassNames(spec: spec, classCount: 5) }
    }

    @Test func theShippedModelsNameTheirClasses() throws {
        for name in ["baseline", "odamtrain"] {
            let spec = try ModelSpec.resolve(Repository.path("Sources/DefaultModel/Models/fcos_synth_\(name).json"))
            #expect(try ClassNames(spec: spec, classCount: 4).names == ["__background__", "person", "car", "sign"])
        }
    }

    @Test func labelFilesAreListsOrCOCOCategories() throws {
        let folder = NSTemporaryDirectory() + "odam-labels-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func write(_ text: String) throws -> String {
            let path = folder + "/\(UInt32.random(in: 0...UInt32.max)).json"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        #expect(try ClassNames(contentsOf: write(#"["bg", "pedestrian"]"#)).names == ["bg", "pedestrian"])
        let coco = try ClassNames(contentsOf: write(#"{"categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}"#))
        #expect(coco.names == ["__background__", "person", "label 2", "car"])
        for bad in [#"{"images": []}"#, #"[1, 2]"#, #"{"categories": [{"id": -1, "name": "x"}]}"#, "not json"] {
            #expect(throws: ModelError.self) { try ClassNames(contentsOf: write(bad)) }
        }
    }
}
