import Engine
import NN
import TestSupport
import Testing

struct TrainingPartsTests {
    static let fixtures = try! FixtureTensors(path: fixturePath("nn.safetensors", bundle: .module))

    @Test(arguments: ["momentum", "nesterov"])
    func sgdMatchesPyTorch(_ variant: String) {
        let f = Self.fixtures
        let w = Parameter(f.tensor("sgd.\(variant).w0")), b = Parameter(f.tensor("sgd.\(variant).b0"))
        var sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: variant == "nesterov")
        for step in 0..<3 {
            sgd.step(
                [("w", w), ("b", b)], gradients: ["w": f.tensor("sgd.\(variant).gw\(step)"), "b": f.tensor("sgd.\(variant).gb\(step)")])
            #expect(mismatch(w.value, f.tensor("sgd.\(variant).w\(step + 1)"), rtol: 1e-5, atol: 1e-6) == nil, "w after step \(step + 1)")
            #expect(mismatch(b.value, f.tensor("sgd.\(variant).b\(step + 1)"), rtol: 1e-5, atol: 1e-6) == nil, "b after step \(step + 1)")
        }
    }

    @Test func clipGradientNormMatchesPyTorch() {
        let f = Self.fixtures
        var grads = ["a": f.tensor("clip.g1"), "b": f.tensor("clip.g2")]
        let norm = clipGradientNorm(&grads, maxNorm: 1.5)
        #expect(abs(norm - f.tensor("clip.norm").item) < 1e-4)
        #expect(mismatch(grads["a"]!, f.tensor("clip.c1"), rtol: 1e-5, atol: 1e-6) == nil)
        #expect(mismatch(grads["b"]!, f.tensor("clip.c2"), rtol: 1e-5, atol: 1e-6) == nil)
    }

    static func sequential() -> Sequential {
        var random = RandomNumbers(seed: 1)
        return Sequential([
            Conv2d(3, 4, kernel: (3, 3), padding: (1, 1), random: &random), BatchNorm2d(4), Lambda { $0.relu() },
            Lambda { $0.adaptiveAvgPool2d(outputSize: (1, 1)) }, Lambda { $0.reshaped([$0.shape[0], -1]) },
            Linear(4, 2, random: &random),
        ])
    }

    @Test func sequentialLoadsAPyTorchStateDictByName() throws {
        let f = Self.fixtures
        let model = Self.sequential()
        let prefix = "seq.state."
        let state = Dictionary(
            uniqueKeysWithValues: f.tensors.keys.filter { $0.hasPrefix(prefix) }.map {
                (String($0.dropFirst(prefix.count)), f.tensor($0))
            })
        try model.load(state)
        #expect(mismatch(model(f.tensor("seq.x")), f.tensor("seq.y"), rtol: 1e-4, atol: 1e-5) == nil)
        #expect(Set(model.stateDict.keys) == Set(state.keys))
    }

    @Test func stateDictMismatchNamesEveryKey() {
        let model = Self.sequential()
        var state = model.stateDict
        state["0.weight"] = nil
        state["5.weight"] = Tensor(zeros: [3, 4])
        state["extra.bias"] = Tensor(zeros: [1])
        #expect {
            try model.load(state)
        } throws: { error in
            let text = "\(error)"
            return text.contains("missing keys: 0.weight") && text.contains("unexpected keys: extra.bias")
                && text.contains("5.weight expects [2, 4], file has [3, 4]")
        }
    }

    @Test func warmupAndStepSchedule() {
        let schedule = LearningRateSchedule(baseRate: 0.01, warmupIterations: 100, warmupFactor: 0.001, milestones: [1000, 2000])
        #expect(abs(schedule.rate(at: 0) - 0.01 * 0.001) < 1e-9)
        #expect(abs(schedule.rate(at: 50) - 0.01 * (0.001 * 0.5 + 0.5)) < 1e-9)
        #expect(schedule.rate(at: 100) == 0.01)
        #expect(abs(schedule.rate(at: 1500) - 0.001) < 1e-9)
        #expect(abs(schedule.rate(at: 2500) - 0.0001) < 1e-9)
    }

    @Test func trainingStepReducesALoss() {
        var random = RandomNumbers(seed: 3)
        let model = Linear(3, 1, random: &random)
        let x = random.normal([16, 3]), target = Tensor.linear(x, weight: Tensor(shape: [1, 3], values: [1, -2, 0.5]))
        var sgd = SGD(learningRate: 0.1, momentum: 0.9)
        func loss() -> Tensor { (model(x) - target).squared().mean() }
        let before = withoutGradients { loss().item }
        for _ in 0..<50 {
            model.beginTrainingStep()
            let value = loss()
            let params = model.trainableParameters
            let grads = gradients(of: value, withRespectTo: params.map(\.parameter.value))
            model.endTrainingStep()
            sgd.step(params, gradients: Dictionary(uniqueKeysWithValues: zip(params.map(\.name), grads)))
        }
        #expect(withoutGradients { loss().item } < before * 0.01)
    }
}
