import Detection
import Testing

/// Model specs that cannot be built are refused with the field and the reason, before any layer is made.
struct ModelSpecTests {
    @Test(arguments: [
        (ModelSpec.Architecture.fcos, 1, 48, "not a multiple of 32"), (.retinanet, 2, 16, "not a multiple of 32"),
        (.fcos, 1, 0, "at least 1"),
    ])
    func groupNormHeadsNeedWholeGroups(architecture: ModelSpec.Architecture, version: Int, channels: Int, reason: String) {
        var spec = ModelSpec(architecture: architecture)
        (spec.version, spec.fpnChannels, spec.backbone, spec.baseWidth) = (version, channels, "resnet18", 8)
        #expect {
            try spec.build(classCount: 3)
        } throws: { error in
            "\(error)".contains("fpnChannels \(channels)") && "\(error)".contains(reason)
        }
    }

    @Test func plainHeadsTakeAnyWidth() throws {
        var spec = ModelSpec(architecture: .retinanet)
        (spec.fpnChannels, spec.backbone, spec.baseWidth) = (24, "resnet18", 8)
        #expect(try spec.build(classCount: 3).classCount == 3)
    }
}
