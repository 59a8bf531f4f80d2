import Detection
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
}
