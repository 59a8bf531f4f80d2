import Engine
import NN
import TestSupport
import Testing

struct AutodiffTests {
    /// A small conv → GN → ReLU → conv network, as the detector heads.
    static func network(_ x: Tensor, _ w1: Tensor, _ w2: Tensor, _ gamma: Tensor, _ beta: Tensor) -> Tensor {
        let hidden = Tensor.groupNorm(Tensor.conv2d(x, weight: w1, padding: (1, 1)), groups: 4, weight: gamma, bias: beta).relu()
        return Tensor.conv2d(hidden, weight: w2, padding: (1, 1))
    }

    @Test func batchedSeedsEqualSeparateBackwardPasses() {
        var random = RandomNumbers(seed: 7)
        let x = random.normal([1, 8, 9, 10]).requiringGradient()
        let w1 = random.normal([16, 8, 3, 3], standardDeviation: 0.2), w2 = random.normal([3, 16, 3, 3], standardDeviation: 0.2)
        let gamma = random.normal([16]).requiringGradient(), beta = random.normal([16])
        let y = Self.network(x, w1, w2, gamma, beta)
        let seeds = 5
        let seed = Tensor(shape: [seeds] + y.shape) { i in (i % y.count) == (i / y.count) * 37 ? 1 : 0 }
        let batched = vectorJacobianProducts(of: [y], seeds: [seed], withRespectTo: [x, gamma])
        #expect(batched[0].shape == [seeds] + x.shape)
        #expect(batched[1].shape == [seeds, 16])
        for s in 0..<seeds {
            let single = gradients(of: y, seed: seed.selecting(index: s, alongAxis: 0), withRespectTo: [x, gamma])
            #expect(mismatch(batched[0].selecting(index: s, alongAxis: 0), single[0], rtol: 1e-4, atol: 1e-5) == nil)
            #expect(mismatch(batched[1].selecting(index: s, alongAxis: 0), single[1], rtol: 1e-4, atol: 1e-5) == nil)
        }
    }

    @Test func gradientWithRespectToAnIntermediate() {
        let x = Tensor(shape: [3], values: [1, 2, 3]).requiringGradient()
        let middle = x * x
        let y = (middle * 2).sum()
        let grads = gradients(of: y, withRespectTo: [middle, x])
        #expect(grads[0].scalars == [2, 2, 2])
        #expect(grads[1].scalars == [4, 8, 12])
    }

    @Test func deepGraphsDoNotOverflowTheStack() {
        var value = Tensor(shape: [2], values: [1, 1]).requiringGradient()
        let start = value
        for _ in 0..<100_000 { value = value * 1.0 }
        let grad = gradients(of: value.sum(), withRespectTo: [start])[0]
        #expect(grad.scalars == [1, 1])
    }

    @Test func noGradientModeRecordsNothing() {
        let x = Tensor(shape: [2], values: [1, 2]).requiringGradient()
        let y = withoutGradients { (x * x).relu() }
        #expect(!y.requiresGradient)
        #expect((x * x).requiresGradient)
    }

    @Test func unrelatedInputsGetZeroGradients() {
        let x = Tensor(shape: [2], values: [1, 2]).requiringGradient()
        let unrelated = Tensor(shape: [3], values: [1, 2, 3]).requiringGradient()
        let grads = gradients(of: (x * 3).sum(), withRespectTo: [unrelated, x])
        #expect(grads[0].scalars == [0, 0, 0])
        #expect(grads[1].scalars == [3, 3])
    }

    @Test func copyOnWriteKeepsValueSemantics() {
        let a = Tensor(shape: [2], values: [1, 2])
        var b = a
        b[0] = 5
        #expect(a.scalars == [1, 2])
        #expect(b.scalars == [5, 2])
    }
}

struct LargeTensorTests {
    /// Large enough for the threaded paths; compared with a plain Double loop.
    @Test(arguments: [[0, 2, 3], [1], [2, 3], [0, 1, 2, 3]])
    func threadedSumsMatchAPlainLoop(_ axes: [Int]) {
        var random = RandomNumbers(seed: 11)
        let x = random.normal([3, 16, 40, 50])
        let sum = x.sum(alongAxes: axes, keepingDimensions: true)
        var expected = [Double](repeating: 0, count: sum.count)
        let keptStrides = sum.shape.contiguousStrides
        let values = x.scalars
        var flat = 0
        for n in 0..<3 {
            for c in 0..<16 {
                for h in 0..<40 {
                    for w in 0..<50 {
                        let index = [n, c, h, w]
                        let out = (0..<4).map { axes.contains($0) ? 0 : index[$0] * keptStrides[$0] }.reduce(0, +)
                        expected[out] += Double(values[flat])
                        flat += 1
                    }
                }
            }
        }
        #expect(mismatch(sum, Tensor(shape: sum.shape, values: expected.map { Float($0) }), rtol: 1e-5, atol: 1e-4) == nil)
    }
}
