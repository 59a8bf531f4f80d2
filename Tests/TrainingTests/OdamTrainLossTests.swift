import Detection
import Engine
import Explain
import Foundation
import NN
import Testing
import Training
import Vision

/// Odam-Train's gradient with respect to the FPN features, against finite differences with the (detached) gradients
/// held fixed: the official code's 11x11 windows and the exact maps over the whole level.
struct OdamTrainLossTests {
    /// Samples on a 12x14 level of stride 8 (input 96x112), two objects, windows from fixed random gradients.
    struct Setup {
        let channels = 3, height = 12, width = 14
        var features: [Float]
        var gradients: [[Float]]
        /// Whole-level gradients [C, H, W] for the exact maps.
        var levelGradients: [[Float]]
        let cells = [(3, 4), (4, 5), (5, 6), (8, 9), (7, 10)]
        let objects = [0, 0, 0, 1, 1]
        let boxes: [[Float]] = [[10, 10, 60, 60], [20, 15, 70, 65], [25, 25, 75, 75], [50, 40, 100, 90], [60, 40, 110, 90]]

        init() {
            var random = RandomNumbers(seed: 5)
            features = (0..<(3 * 12 * 14)).map { _ in random.unit() }
            gradients = (0..<5).map { _ in (0..<(3 * 121)).map { _ in random.unit() - 0.3 } }
            levelGradients = (0..<5).map { _ in (0..<(3 * 12 * 14)).map { _ in random.unit() - 0.3 } }
        }

        /// Exact maps: each sample's gradient over the whole level.
        func exactMaps(_ features: [Float]) -> [ResizedMap] {
            cells.indices.map { k in
                levelGradients[k].withUnsafeBufferPointer { g in
                    features.withUnsafeBufferPointer { a in
                        ResizedMap(
                            levelGradient: g.baseAddress!, features: a.baseAddress!, channels: channels,
                            levelSize: ImageSize(height: height, width: width),
                            stride: (8, 8), grid: ImageSize(height: 6, width: 7), inputSize: ImageSize(height: 96, width: 112))
                    }
                }
            }
        }

        func maps(_ features: [Float]) -> [ResizedMap] {
            cells.enumerated().map { k, cell in
                var values = [Float](repeating: 0, count: 121)
                for dy in 0..<11 {
                    for dx in 0..<11 {
                        let y = cell.0 + dy - 5, x = cell.1 + dx - 5
                        guard y >= 0 && y < height && x >= 0 && x < width else { continue }
                        var sum: Float = 0
                        for c in 0..<channels { sum += gradients[k][c * 121 + dy * 11 + dx] * features[(c * height + y) * width + x] }
                        values[dy * 11 + dx] = max(sum, 0)
                    }
                }
                return gradients[k].withUnsafeBufferPointer { g in
                    ResizedMap(
                        window: FCOSReversedHead.Window(
                            member: k, target: .logit, level: 0, row: cell.0, column: cell.1,
                            levelSize: ImageSize(height: height, width: width), stride: (8, 8),
                            values: Tensor(shape: [11, 11], values: values), gradient: g.baseAddress!, channels: channels),
                        grid: ImageSize(height: 6, width: 7), inputSize: ImageSize(height: 96, width: 112))
                }
            }
        }

        var samples: [OdamTrainLoss.Sample] {
            cells.indices.map { k in
                OdamTrainLoss.Sample(
                    level: 0, cell: cells[k].0 * width + cells[k].1, object: objects[k], label: 1, iou: Float(5 - k), box: boxes[k])
            }
        }
    }

    @Test(arguments: [true, false], [false, true])
    func gradientMatchesFiniteDifferences(perObject: Bool, exact: Bool) {
        let setup = Setup()
        var settings = OdamTrainSettings()
        settings.perObjectReference = perObject
        settings.predictionsPerImage = 10
        let loss = OdamTrainLoss(settings: settings)
        func maps(_ features: [Float]) -> [ResizedMap] { exact ? setup.exactMaps(features) : setup.maps(features) }
        func value(_ features: [Float]) -> Float { loss.imageLoss(samples: setup.samples, maps: maps(features)).0 }
        let maps = maps(setup.features)
        let (base, derivatives, pairs) = loss.imageLoss(samples: setup.samples, maps: maps)
        #expect(pairs > 3 && base > 0)
        let gradient = Tensor(zeros: [1, setup.channels, setup.height, setup.width])
        for (k, map) in maps.enumerated() {
            map.backpropagate(derivatives[k], into: gradient, image: 0, scale: 1, levelSize: (setup.height, setup.width))
        }
        let analytic = gradient.scalars
        var checked = 0
        for index in stride(from: 0, to: setup.features.count, by: 7) where abs(analytic[index]) > 1e-4 {
            var plus = setup.features, minus = setup.features
            plus[index] += 1e-3
            minus[index] -= 1e-3
            let numeric = (value(plus) - value(minus)) / 2e-3
            #expect(abs(numeric - analytic[index]) <= 2e-3 + 0.03 * abs(numeric), "feature \(index): \(analytic[index]) vs \(numeric)")
            checked += 1
        }
        #expect(checked > 10)
    }
}
