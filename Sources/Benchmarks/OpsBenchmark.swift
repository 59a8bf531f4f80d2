import CBLAS
import Engine

/// `odam bench ops`: GFLOP/s of sgemm and of the convolutions that dominate detection networks (ResNet-50 FPN's and
/// MobileNetV2's).
public enum OpsBenchmark {
    public struct Row: Sendable, Codable {
        public var name: String
        public var pass: String
        public var gflop: Double
        public var timing: Timing
        public var gflopsPerSecond: Double { gflop / timing.median }
        /// This row's GFLOP/s over the sgemm figure of the same run.
        public var ratioToSgemm: Double?
    }

    public struct Report: Sendable, Codable {
        public var threads: Int
        public var blasCore: String
        public var rows: [Row]
    }

    struct ConvCase {
        let name: String
        let input: [Int]
        let outChannels: Int
        let kernel: Int
        let padding: Int
        var stride = 1
        var groups = 1
    }

    static let convolutions = [
        ConvCase(name: "conv3x3 256->256 1x256x100x152", input: [1, 256, 100, 152], outChannels: 256, kernel: 3, padding: 1),
        ConvCase(name: "conv3x3 64->64 1x64x200x304", input: [1, 64, 200, 304], outChannels: 64, kernel: 3, padding: 1),
        ConvCase(name: "conv1x1 256->1024 1x256x100x152", input: [1, 256, 100, 152], outChannels: 1024, kernel: 1, padding: 0),
        ConvCase(name: "conv1x1 1024->256 1x1024x50x76", input: [1, 1024, 50, 76], outChannels: 256, kernel: 1, padding: 0),
        // MobileNetV2 at 300x300 (the shipped SSDLite): 3x3 depthwise, stride 1 and 2, and the 1x1 expansions and
        // projections around them.
        ConvCase(name: "dw3x3 32 1x32x150x150", input: [1, 32, 150, 150], outChannels: 32, kernel: 3, padding: 1, groups: 32),
        ConvCase(
            name: "dw3x3 96 s2 1x96x150x150", input: [1, 96, 150, 150], outChannels: 96, kernel: 3, padding: 1, stride: 2, groups: 96),
        ConvCase(name: "dw3x3 144 1x144x75x75", input: [1, 144, 75, 75], outChannels: 144, kernel: 3, padding: 1, groups: 144),
        ConvCase(name: "dw3x3 576 1x576x19x19", input: [1, 576, 19, 19], outChannels: 576, kernel: 3, padding: 1, groups: 576),
        ConvCase(name: "conv1x1 16->96 1x16x150x150", input: [1, 16, 150, 150], outChannels: 96, kernel: 1, padding: 0),
        ConvCase(name: "conv1x1 144->24 1x144x75x75", input: [1, 144, 75, 75], outChannels: 24, kernel: 1, padding: 0),
        ConvCase(name: "conv1x1 96->576 1x96x19x19", input: [1, 96, 19, 19], outChannels: 576, kernel: 1, padding: 0),
    ]

    public static func run(runs: Int = 5) -> Report {
        var rows: [Row] = []
        let size = 2048
        let a = Tensor(shape: [size, size]) { Float($0 % 7) * 0.1 }, b = Tensor(shape: [size, size]) { Float($0 % 5) * 0.1 }
        let c = Tensor(zeros: [size, size])
        let sgemmTiming = Timing.measure(runs: runs) {
            sgemm(m: size, n: size, k: size, a: a.storage.base, lda: size, b: b.storage.base, ldb: size, c: c.storage.base, ldc: size)
        }
        let sgemmRow = Row(name: "sgemm 2048^3", pass: "forward", gflop: 2 * pow3(size) / 1e9, timing: sgemmTiming, ratioToSgemm: 1)
        rows.append(sgemmRow)
        for conv in convolutions {
            let g = ConvGeometry(
                batch: conv.input[0], inChannels: conv.input[1], height: conv.input[2], width: conv.input[3],
                outChannels: conv.outChannels, kernelHeight: conv.kernel, kernelWidth: conv.kernel,
                strideY: conv.stride, strideX: conv.stride, padY: conv.padding, padX: conv.padding, dilationY: 1, dilationX: 1,
                groups: conv.groups)
            let x = Tensor(shape: conv.input) { Float(($0 * 7) % 13) * 0.05 - 0.3 }
            let w = Tensor(shape: [conv.outChannels, conv.input[1] / conv.groups, conv.kernel, conv.kernel]) {
                Float(($0 * 5) % 11) * 0.01 - 0.05
            }
            let y = Tensor(zeros: [g.batch, g.outChannels, g.outHeight, g.outWidth])
            let dx = Tensor(zeros: conv.input), dw = Tensor(zeros: w.shape)
            let gflop = g.flops / 1e9
            let passes: [(String, () -> Void)] = [
                ("forward", { ConvKernels.forward(input: x.storage.base, weight: w.storage.base, output: y.storage.base, g) }),
                (
                    "input-gradient",
                    { ConvKernels.backwardInput(gradOutput: y.storage.base, weight: w.storage.base, gradInput: dx.storage.base, g) }
                ),
                (
                    "weight-gradient",
                    {
                        dw.storage.base.update(repeating: 0, count: dw.count)
                        ConvKernels.backwardWeight(input: x.storage.base, gradOutput: y.storage.base, gradWeight: dw.storage.base, g)
                    }
                ),
            ]
            for (pass, body) in passes {
                let timing = Timing.measure(runs: runs, body)
                var row = Row(name: conv.name, pass: pass, gflop: gflop, timing: timing)
                row.ratioToSgemm = row.gflopsPerSecond / sgemmRow.gflopsPerSecond
                rows.append(row)
            }
        }
        return Report(threads: ComputeThreads.count, blasCore: ComputeThreads.blasCoreName, rows: rows)
    }

    private static func pow3(_ n: Int) -> Double { Double(n) * Double(n) * Double(n) }

    /// The report as an aligned text table.
    public static func table(_ report: Report) -> String {
        var lines = [
            "threads: \(report.threads), OpenBLAS kernels: \(report.blasCore)",
            pad("op", 34) + pad("pass", 17) + pad("GFLOP", 8) + pad("median ms", 11) + pad("GFLOP/s", 9) + "x sgemm",
        ]
        for row in report.rows {
            lines.append(
                pad(row.name, 34) + pad(row.pass, 17) + pad(fixed(row.gflop, 2), 8) + pad(fixed(row.timing.median * 1e3, 2), 11)
                    + pad(fixed(row.gflopsPerSecond, 1), 9) + (row.ratioToSgemm.map { fixed($0, 2) } ?? ""))
        }
        return lines.joined(separator: "\n")
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
    }
    return text
}
