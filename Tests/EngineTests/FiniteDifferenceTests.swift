import Engine
import TestSupport
import Testing

/// Central finite differences against the analytic gradient of every op that has one.
///
/// The engine computes in float32, so the loss `Σ output · cotangent` is accumulated in Double and the step is
/// 1e-3; an element where the two one-sided differences disagree sits on a kink (ReLU at 0, a max tie) and is
/// skipped. Up to 24 elements per input are checked, chosen by a fixed stride.
struct FiniteDifferenceTests {
    static let casesWithGradients = GoldenOpTests.cases.filter { !$0.grad.isEmpty }

    static func loss(_ c: GoldenOpTests.Case, _ inputs: [String: Tensor], _ ints: [String: IndexTensor]) -> Double {
        let f = GoldenOpTests.fixtures
        let (floats, _) = withoutGradients { GoldenOpTests.run(c, inputs, ints) }
        var total: Double = 0
        for (position, output) in floats {
            let cot = f.tensor("\(c.name).cot.\(position)").scalars
            for (value, weight) in zip(output.scalars, cot) { total += Double(value) * Double(weight) }
        }
        return total
    }

    @Test(arguments: casesWithGradients)
    func analyticGradientMatchesFiniteDifferences(_ c: GoldenOpTests.Case) {
        let (inputs, ints) = GoldenOpTests.inputs(c)
        let (floats, _) = GoldenOpTests.run(c, inputs, ints)
        let analytic = gradients(of: GoldenOpTests.loss(c, floats)!, withRespectTo: c.grad.map { inputs[$0]! })
        let step: Float = 1e-3
        for (name, gradient) in zip(c.grad, analytic) {
            let base = inputs[name]!.detached()
            let count = base.count
            let stride = max(1, count / 24)
            var checked = 0
            for index in Swift.stride(from: 0, to: count, by: stride) {
                func lossAt(_ delta: Float) -> Double {
                    var shifted = base
                    shifted.withUnsafeMutableBufferPointer { $0[index] += delta }
                    var perturbed = inputs.mapValues { $0.detached() }
                    perturbed[name] = shifted
                    return Self.loss(c, perturbed, ints)
                }
                let center = lossAt(0), plus = lossAt(step), minus = lossAt(-step)
                let right = (plus - center) / Double(step), left = (center - minus) / Double(step)
                let tolerance = 5e-3 + 1e-2 * abs(right)
                if abs(right - left) > 2 * tolerance { continue }  // a kink: no derivative to compare
                let numeric = (plus - minus) / (2 * Double(step))
                let value = Double(gradient.scalars[index])
                #expect(abs(numeric - value) <= 5e-3 + 1e-2 * abs(numeric), "\(name)[\(index)]: analytic \(value), numeric \(numeric)")
                checked += 1
            }
            #expect(checked > 0, "no differentiable element of \(name) was checked")
        }
    }
}
