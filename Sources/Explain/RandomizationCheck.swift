public import Detection
public import Engine
import NN

/// The model-randomization sanity check (Adebayo et al. 2018): an explanation that depends on what the model
/// learned must change when the learned weights are replaced by random ones. The detector's head (every parameter
/// outside `backbone.`) is re-initialized as a fresh model would be, the backbone and FPN are kept, and the maps of
/// the same predictions (same level, cell, anchor or RoI, and class) are compared by Spearman rank correlation.
public enum RandomizationCheck {
    /// A copy of `trained` (built from `spec`) whose head has fresh random weights.
    public static func headRandomized(_ trained: any Detector, spec: ModelSpec) throws -> any Detector {
        let fresh = try spec.build(classCount: trained.classCount)
        let kept = Dictionary(uniqueKeysWithValues: trained.namedParameters.map { ($0.name, $0.parameter) })
        for (name, parameter) in fresh.namedParameters where name.hasPrefix("backbone.") {
            parameter.value = kept[name]!.value
        }
        return fresh
    }

    /// Spearman rank correlation of two equally shaped maps, every `step`-th pixel in each direction (ties get
    /// their mean rank).
    public static func spearman(_ a: Tensor, _ b: Tensor, step: Int = 4) -> Double {
        precondition(a.shape == b.shape && a.rank == 2, "maps differ in shape")
        let height = a.shape[0], width = a.shape[1]
        let x = a.scalars, y = b.scalars
        var samples: [(Float, Float)] = []
        for row in stride(from: 0, to: height, by: step) {
            for column in stride(from: 0, to: width, by: step) { samples.append((x[row * width + column], y[row * width + column])) }
        }
        func ranks(_ values: [Float]) -> [Double] {
            let order = values.indices.sorted { values[$0] < values[$1] }
            var result = [Double](repeating: 0, count: values.count)
            var start = 0
            while start < order.count {
                var end = start
                while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
                let mean = Double(start + end) / 2
                for k in start...end { result[order[k]] = mean }
                start = end + 1
            }
            return result
        }
        let rx = ranks(samples.map(\.0)), ry = ranks(samples.map(\.1))
        let mx = rx.reduce(0, +) / Double(rx.count), my = ry.reduce(0, +) / Double(ry.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in rx.indices {
            sxy += (rx[i] - mx) * (ry[i] - my)
            sxx += (rx[i] - mx) * (rx[i] - mx)
            syy += (ry[i] - my) * (ry[i] - my)
        }
        return sxx == 0 || syy == 0 ? (sxx == syy ? 1 : 0) : sxy / (sxx * syy).squareRoot()
    }
}
