import Detection
import Engine
import Foundation
import TestSupport
import Testing
import Training

/// The FCOS loss against torchvision's `FCOS.compute_loss` (`Tools/make_training_fixtures.py`).
struct FCOSLossTests {
    struct Manifest: Decodable {
        struct Target: Decodable { let boxes: [[Float]], labels: [Int] }
        let targets: [Target]
        let losses: [String: Float]
    }

    @Test func matchesTorchvision() throws {
        let directory = fixtureDirectory(bundle: .module)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/fcos_loss.json")))
        let f = try FixtureTensors(path: directory + "/fcos_loss.safetensors")
        let levels = 0..<5
        let logits = levels.map { f.tensor("logits.\($0)").requiringGradient() }
        let boxes = levels.map { f.tensor("boxes.\($0)").requiringGradient() }
        let centerness = levels.map { f.tensor("centerness.\($0)").requiringGradient() }
        let anchors = levels.map { f.tensor("anchors.\($0)").scalars }
        let targets = manifest.targets.map { TrainingTarget(boxes: $0.boxes, labels: $0.labels, ignored: $0.boxes.map { _ in false }) }
        let terms = FCOSLoss()(logits: logits, boxes: boxes, centerness: centerness, targets: targets, anchors: anchors)
        #expect(abs(terms.classification.item - manifest.losses["classification"]!) <= 1e-4 * manifest.losses["classification"]!)
        #expect(abs(terms.regression.item - manifest.losses["bbox_regression"]!) <= 1e-4)
        #expect(abs(terms.centerness.item - manifest.losses["bbox_ctrness"]!) <= 1e-4)
        let grads = gradients(of: terms.total, withRespectTo: logits + boxes + centerness)
        for level in levels {
            for (k, name) in ["logits", "boxes", "centerness"].enumerated() {
                let message = mismatch(grads[k * 5 + level], f.tensor("grad.\(name).\(level)"), rtol: 1e-3, atol: 1e-6)
                #expect(message == nil, "gradient of \(name) on level \(level): \(message ?? "")")
            }
        }
    }

    /// Locations inside an ignore region that match no object leave the classification loss.
    @Test func ignoreRegionsLeaveTheClassificationLoss() {
        let anchors: [[Float]] = [
            (0..<16).flatMap { cell -> [Float] in
                let x = Float(cell % 4) * 8, y = Float(cell / 4) * 8
                return [x - 4, y - 4, x + 4, y + 4]
            }
        ]
        let target = TrainingTarget(boxes: [[-1, -1, 12, 12], [15, 15, 40, 40]], labels: [1, 1], ignored: [false, true])
        let matched = FCOSLoss().assign(anchors: anchors, target: target)[0]
        #expect(matched[0] == 0 && matched[5] == 0, "locations near the object's centre learn it")
        #expect(matched[10] == FCOSLoss.ignoredLocation && matched[15] == FCOSLoss.ignoredLocation)
        #expect(matched[3] == FCOSLoss.background)
    }

    /// The official ODAM code's quality assignment, against its torch transcription in `Tools/make_training_fixtures.py`
    /// on the same head outputs and targets.
    @Test func qualityAssignmentMatchesTheOfficialCode() throws {
        let directory = fixtureDirectory(bundle: .module)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/fcos_loss.json")))
        let f = try FixtureTensors(path: directory + "/fcos_loss.safetensors")
        let expected = try FixtureTensors(path: directory + "/quality_assignment.safetensors")
        let logits = (0..<5).map { f.tensor("logits.\($0)") }, boxes = (0..<5).map { f.tensor("boxes.\($0)") }
        let anchors = (0..<5).map { f.tensor("anchors.\($0)").scalars }
        var loss = FCOSLoss()
        loss.assignment = .quality
        for (image, target) in manifest.targets.enumerated() {
            let training = TrainingTarget(boxes: target.boxes, labels: target.labels, ignored: target.boxes.map { _ in false })
            let assigned = loss.assign(anchors: anchors, target: training, image: image, logits: logits, boxes: boxes).flatMap { $0 }
            let reference = expected.indices("assigned.\(image)").values
            #expect(assigned == reference, "image \(image)")
            #expect(assigned.contains { $0 >= 0 }, "image \(image) has positives")
            #expect(
                assigned != FCOSLoss().assign(anchors: anchors, target: training).flatMap { $0 },
                "the quality assignment differs from torchvision's on image \(image)")
        }
        // Training with it runs the same loss on the new positives.
        let terms = loss(
            logits: logits, boxes: boxes, centerness: (0..<5).map { f.tensor("centerness.\($0)") },
            targets: manifest.targets.map {
                TrainingTarget(boxes: $0.boxes, labels: $0.labels, ignored: $0.boxes.map { _ in false })
            }, anchors: anchors)
        #expect(terms.foreground == (0..<2).map { expected.indices("assigned.\($0)").values.filter { $0 >= 0 }.count }.reduce(0, +))
        #expect(terms.total.item.isFinite)
    }
}
