import Engine
import Foundation
import TestSupport
import Testing

/// Every op against PyTorch: outputs and gradients from `Tools/make_engine_fixtures.py`.
struct GoldenOpTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let op: String
        let params: [String: JSONValue]
        let inputs: [String]
        let intInputs: [String]
        let outputs: Int
        let grad: [String]
        var testDescription: String { name }
    }

    struct Manifest: Decodable { let cases: [Case] }

    static let fixtures = try! FixtureTensors(path: fixturePath("ops.safetensors", bundle: .module))
    static let cases: [Case] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: fixturePath("ops.json", bundle: .module)))
        return try! JSONDecoder().decode(Manifest.self, from: data).cases
    }()

    /// Runs a case's op; returns its float outputs and its index outputs (by output position).
    static func run(_ c: Case, _ x: [String: Tensor], _ ints: [String: IndexTensor]) -> (floats: [Int: Tensor], indices: [Int: IndexTensor])
    {
        let p = c.params
        func single(_ t: Tensor) -> ([Int: Tensor], [Int: IndexTensor]) { ([0: t], [:]) }
        switch c.op {
        case "add": return single(x["a"]! + x["b"]!)
        case "sub": return single(x["a"]! - x["b"]!)
        case "mul": return single(x["a"]! * x["b"]!)
        case "div": return single(x["a"]! / x["b"]!)
        case "maximum": return single(Tensor.maximum(x["a"]!, x["b"]!))
        case "minimum": return single(Tensor.minimum(x["a"]!, x["b"]!))
        case "relu": return single(x["x"]!.relu())
        case "sigmoid": return single(x["x"]!.sigmoid())
        case "exp": return single(x["x"]!.exp())
        case "log": return single(x["x"]!.log())
        case "sqrt": return single(x["x"]!.sqrt())
        case "neg": return single(-x["x"]!)
        case "abs": return single(x["x"]!.abs())
        case "clamp": return single(x["x"]!.clamped(min: p["min"]?.float, max: p["max"]?.float))
        case "softmax": return single(x["x"]!.softmax(alongAxis: p["axis"]!.int))
        case "log_softmax": return single(x["x"]!.logSoftmax(alongAxis: p["axis"]!.int))
        case "sum": return single(x["x"]!.sum(alongAxes: p["axes"]!.ints, keepingDimensions: p["keep"]!.bool))
        case "mean": return single(x["x"]!.mean(alongAxes: p["axes"]!.ints, keepingDimensions: p["keep"]!.bool))
        case "amax": return single(x["x"]!.max(alongAxes: p["axes"]!.ints, keepingDimensions: p["keep"]!.bool))
        case "reshape": return single(x["x"]!.reshaped(p["shape"]!.ints))
        case "permute": return single(x["x"]!.permuted(p["order"]!.ints))
        case "concat": return single(Tensor.concatenated(c.inputs.map { x[$0]! }, alongAxis: p["axis"]!.int))
        case "split":
            let parts = x["x"]!.split(sizes: p["sizes"]!.ints, alongAxis: p["axis"]!.int)
            return (Dictionary(uniqueKeysWithValues: parts.enumerated().map { ($0.offset, $0.element) }), [:])
        case "slice":
            return single(x["x"]!.sliced(alongAxis: p["axis"]!.int, start: p["start"]!.int, end: p["end"]!.int, step: p["step"]!.int))
        case "pad":
            let amounts = p["pad"]!.ints
            let pairs = stride(from: 0, to: amounts.count, by: 2).map { (amounts[$0], amounts[$0 + 1]) }
            return single(x["x"]!.padded(pairs, value: p["value"]!.float))
        case "gather": return single(x["x"]!.gathering(alongAxis: p["axis"]!.int, indices: ints["i"]!))
        case "index_select": return single(x["x"]!.indexSelecting(alongAxis: p["axis"]!.int, indices: p["indices"]!.ints))
        case "scatter_add": return single(x["x"]!.scatteringAdd(alongAxis: p["axis"]!.int, indices: ints["i"]!, source: x["src"]!))
        case "where": return single(Tensor.selecting(where: x["c"]!, x["a"]!, x["b"]!))
        case "topk":
            let (values, indices) = x["x"]!.topK(p["k"]!.int, alongAxis: p["axis"]!.int, largest: p["largest"]!.bool)
            return ([0: values], [1: indices])
        case "sort":
            let (values, indices) = x["x"]!.sorted(alongAxis: p["axis"]!.int, descending: p["descending"]!.bool)
            return ([0: values], [1: indices])
        case "argmax": return ([:], [0: x["x"]!.argmax(alongAxis: p["axis"]!.int)])
        case "matmul": return single(Tensor.matmul(x["a"]!, x["b"]!))
        case "linear": return single(Tensor.linear(x["x"]!, weight: x["w"]!, bias: x["b"]))
        case "conv2d":
            return single(
                Tensor.conv2d(
                    x["x"]!, weight: x["w"]!, bias: x["b"], stride: p["stride"]!.pair, padding: p["padding"]!.pair,
                    dilation: p["dilation"]!.pair, groups: p["groups"]!.int))
        case "frozen_bn":
            return single(Tensor.frozenBatchNorm(x["x"]!, weight: x["w"]!, bias: x["b"]!, runningMean: x["rm"]!, runningVariance: x["rv"]!))
        case "batch_norm_train":
            var mean = fixtures.tensor("batch_norm_0.rm0"), variance = fixtures.tensor("batch_norm_0.rv0")
            let y = Tensor.batchNorm(
                x["x"]!, weight: x["w"]!, bias: x["b"]!, runningMean: &mean, runningVariance: &variance, training: true)
            #expect(mismatch(mean, fixtures.tensor("batch_norm_0.running_mean")) == nil, "running mean")
            #expect(mismatch(variance, fixtures.tensor("batch_norm_0.running_var")) == nil, "running variance")
            return single(y)
        case "batch_norm_eval":
            var mean = x["rm"]!, variance = x["rv"]!
            return single(
                Tensor.batchNorm(x["x"]!, weight: x["w"]!, bias: x["b"]!, runningMean: &mean, runningVariance: &variance, training: false))
        case "group_norm": return single(Tensor.groupNorm(x["x"]!, groups: p["groups"]!.int, weight: x["w"]!, bias: x["b"]!))
        case "max_pool": return single(x["x"]!.maxPool2d(kernel: p["kernel"]!.pair, stride: p["stride"]!.pair, padding: p["padding"]!.pair))
        case "avg_pool": return single(x["x"]!.avgPool2d(kernel: p["kernel"]!.pair, stride: p["stride"]!.pair, padding: p["padding"]!.pair))
        case "adaptive_avg_pool": return single(x["x"]!.adaptiveAvgPool2d(outputSize: p["size"]!.pair))
        case "interpolate":
            let mode: Tensor.InterpolationMode =
                p["mode"]!.string == "nearest" ? .nearest : .bilinear(alignCorners: p["alignCorners"]!.bool)
            return single(x["x"]!.interpolated(size: p["size"]!.pair, mode: mode))
        case "roi_align":
            let boxes = x["boxes"]!
            return single(
                Tensor.roiAlign(
                    x["x"]!, boxes: boxes, outputSize: p["size"]!.pair, spatialScale: p["scale"]!.float,
                    samplingRatio: p["samplingRatio"]!.int, aligned: p["aligned"]!.bool))
        case "multiscale_roi_align":
            let raw = x["boxes"]!
            let boxes = Tensor.concatenated([Tensor(zeros: [raw.shape[0], 1]), raw.detached()], alongAxis: 1)
            return single(
                Tensor.multiScaleRoIAlign(
                    ["l0", "l1", "l2", "l3"].map { x[$0]! }, scales: p["scales"]!.floats, boxes: boxes,
                    outputSize: p["size"]!.pair, samplingRatio: p["samplingRatio"]!.int))
        default:
            Issue.record("unknown op \(c.op)")
            return ([:], [:])
        }
    }

    static func tolerance(_ op: String) -> (rtol: Float, atol: Float) {
        switch op {
        case "conv2d", "matmul", "linear", "group_norm", "batch_norm_train", "roi_align", "multiscale_roi_align": (1e-4, 1e-4)
        default: (1e-5, 1e-5)
        }
    }

    /// A case's inputs from the fixture: float inputs (leaves of the graph where the case takes their gradient)
    /// and index inputs.
    static func inputs(_ c: Case) -> (floats: [String: Tensor], indices: [String: IndexTensor]) {
        var inputs: [String: Tensor] = [:]
        for name in c.inputs { inputs[name] = fixtures.tensor("\(c.name).in.\(name)").requiringGradient(c.grad.contains(name)) }
        var ints: [String: IndexTensor] = [:]
        for name in c.intInputs { ints[name] = fixtures.indices("\(c.name).int.\(name)") }
        return (inputs, ints)
    }

    /// Σ output · cotangent over a case's float outputs: the scalar whose gradients the fixture holds.
    static func loss(_ c: Case, _ floats: [Int: Tensor]) -> Tensor? {
        floats.sorted(by: { $0.key < $1.key }).reduce(nil as Tensor?) { partial, entry in
            let term = (entry.value * fixtures.tensor("\(c.name).cot.\(entry.key)")).sum()
            return partial.map { $0 + term } ?? term
        }
    }

    @Test(arguments: cases)
    func matchesPyTorch(_ c: Case) {
        let f = Self.fixtures
        let (inputs, ints) = Self.inputs(c)
        let (floats, indices) = Self.run(c, inputs, ints)
        let (rtol, atol) = Self.tolerance(c.op)
        for (position, output) in floats.sorted(by: { $0.key < $1.key }) {
            #expect(mismatch(output, f.tensor("\(c.name).out.\(position)"), rtol: rtol, atol: atol) == nil, "output \(position)")
        }
        let loss = Self.loss(c, floats)
        for (position, output) in indices {
            #expect(output == f.indices("\(c.name).out.\(position)"), "index output \(position)")
        }
        guard let loss, !c.grad.isEmpty else { return }
        let grads = gradients(of: loss, withRespectTo: c.grad.map { inputs[$0]! })
        for (name, grad) in zip(c.grad, grads) {
            let message = mismatch(grad, f.tensor("\(c.name).grad.\(name)"), rtol: rtol, atol: atol)
            #expect(message == nil, "gradient of \(name): \(message ?? "")")
        }
    }
}
