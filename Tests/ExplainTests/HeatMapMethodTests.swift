import Engine
import Explain
import Foundation
import Testing

struct HeatMapMethodTests {
    /// One channel, activation 1 everywhere: the map is the (smoothed, transformed) gradient, clipped at 0.
    static func map(_ method: HeatMapMethod, gradient: [Float], side: Int, boxCells: (Float, Float) = (4, 4)) -> [Float] {
        let activation = [Float](repeating: 1, count: side * side)
        return gradient.withUnsafeBufferPointer { g in
            activation.withUnsafeBufferPointer { a in
                method.map(gradient: g.baseAddress!, activation: a.baseAddress!, channels: 1, height: side, width: side, boxCells: boxCells)
                    .scalars
            }
        }
    }

    @Test func gaussianSmoothingSpreadsADeltaIntoANormalizedSeparableBump() {
        let side = 9
        var delta = [Float](repeating: 0, count: side * side)
        delta[4 * side + 4] = 1
        // σ = 0.25 · sqrt(4 · 4) = 1 cell, kernel ±2.
        let smoothed = Self.map(.odam(smoothing: .gaussian(scale: 0.25)), gradient: delta, side: side)
        #expect(abs(smoothed.reduce(0, +) - 1) < 1e-5, "mass is kept")
        let center = smoothed[4 * side + 4], right = smoothed[4 * side + 5], diagonal = smoothed[5 * side + 5]
        #expect(center > right && right > diagonal && diagonal > 0)
        // Separable Gaussian with σ = 1: neighbour / centre = exp(-1/2), diagonal / centre = exp(-1).
        #expect(abs(right / center - Float(exp(-0.5))) < 1e-4)
        #expect(abs(diagonal / center - Float(exp(-1.0))) < 1e-4)
        #expect(smoothed[0] == 0, "beyond ±2σ nothing arrives")
        #expect(Self.map(.odam(), gradient: delta, side: side) == delta, "no smoothing leaves the gradient as it is")
    }

    @Test(arguments: [
        (GradientTransform.identity, [Float](arrayLiteral: 2, 0)), (.positive, [2, 0]), (.negative, [0, 3]), (.absolute, [2, 3]),
    ])
    func gradientVariants(_ transform: GradientTransform, _ expected: [Float]) {
        // Pixel 0 has gradient +2, pixel 1 has -3; the final ReLU clips negative sums.
        let map = Self.map(.odam(gradient: transform), gradient: [2, -3, 0, 0], side: 2)
        #expect(Array(map.prefix(2)) == expected)
    }
}

struct HeatMapMethodNameTests {
    @Test(arguments: [
        ("odam", HeatMapMethod.odam()), ("gradcam", .gradCAM), ("gradcampp", .gradCAMPlusPlus),
        ("odam/gaussian:0.25", .odam(smoothing: .gaussian(scale: 0.25))), ("odam/absolute", .odam(gradient: .absolute)),
        ("odam/gaussian:0.5/positive", .odam(smoothing: .gaussian(scale: 0.5), gradient: .positive)),
    ])
    func parsesNames(_ name: String, _ expected: HeatMapMethod) {
        #expect(HeatMapMethod.named(name) == expected)
    }

    @Test(arguments: ["odam/blur", "gaussian:0.3", "odam/gaussian:-1", "gradcam/positive"])
    func refusesOthers(_ name: String) {
        #expect(HeatMapMethod.named(name) == nil)
    }
}
