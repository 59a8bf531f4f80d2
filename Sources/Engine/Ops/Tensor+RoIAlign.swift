#if canImport(Glibc)
    import Glibc
#endif

/// RoIAlign with torchvision's semantics, for one feature map and for several FPN levels.
extension Tensor {
    /// `torchvision.ops.roi_align`. `features` is [N, C, H, W]; `boxes` is [K, 5] rows of (image index, x1, y1,
    /// x2, y2) in image coordinates. Returns [K, C, outputHeight, outputWidth]. Gradients flow to `features`.
    public static func roiAlign(
        _ features: Tensor, boxes: Tensor, outputSize: (Int, Int), spatialScale: Float,
        samplingRatio: Int = -1, aligned: Bool = false
    ) -> Tensor {
        precondition(
            features.rank == 4 && boxes.rank == 2 && boxes.shape[1] == 5, "roi_align features \(features.shape), boxes \(boxes.shape)")
        let channels = features.shape[1], h = features.shape[2], w = features.shape[3]
        let (ph, pw) = outputSize
        let roiCount = boxes.shape[0]
        let samples = (0..<roiCount).map { k in
            RoISamples(
                box: boxes.storage.base + k * 5, pooled: outputSize, spatialScale: spatialScale,
                samplingRatio: samplingRatio, aligned: aligned, height: h, width: w)
        }
        let result = Tensor(zeros: [roiCount, channels, ph, pw])
        let pf = features.storage.base, po = result.storage.base
        parallelFor(roiCount * channels, costPerItem: ph * pw * 16) { range in
            for kc in range {
                let k = kc / channels, c = kc % channels
                let sample = samples[k]
                let plane = pf + (sample.image * channels + c) * h * w
                let out = po + kc * ph * pw
                for tap in sample.taps {
                    out[tap.bin] += tap.weight * plane[tap.offset]
                }
            }
        }
        guard recordsGradient(features) else { return result }
        let featureShape = features.shape
        return result.recorded("roi_align", inputs: [features]) { g, _ in
            let gradient = Tensor(zeros: featureShape)
            let pg = g.storage.base, pd = gradient.storage.base
            // Rois of one image may overlap: split by channel, which never collides.
            parallelFor(channels, costPerItem: roiCount * ph * pw * 16) { range in
                for c in range {
                    for k in 0..<roiCount {
                        let sample = samples[k]
                        let plane = pd + (sample.image * channels + c) * h * w
                        let grad = pg + (k * channels + c) * ph * pw
                        for tap in sample.taps { plane[tap.offset] += tap.weight * grad[tap.bin] }
                    }
                }
            }
            return [gradient]
        }
    }

    /// torchvision's `MultiScaleRoIAlign`: each box is pooled from the FPN level chosen by its size
    /// (`floor(canonicalLevel + log2(sqrt(area) / canonicalSize) + 1e-6)`, clamped to the levels given).
    ///
    /// - Parameter scales: each level's scale relative to the image (for example 1/4, 1/8, 1/16, 1/32).
    public static func multiScaleRoIAlign(
        _ levels: [Tensor], scales: [Float], boxes: Tensor, outputSize: (Int, Int), samplingRatio: Int = 2,
        canonicalSize: Float = 224, canonicalLevel: Float = 4, aligned: Bool = false
    ) -> Tensor {
        precondition(levels.count == scales.count && !levels.isEmpty, "one scale per level")
        if levels.count == 1 {
            return roiAlign(
                levels[0], boxes: boxes, outputSize: outputSize, spatialScale: scales[0], samplingRatio: samplingRatio, aligned: aligned)
        }
        let assignment = roiLevels(boxes: boxes, scales: scales, canonicalSize: canonicalSize, canonicalLevel: canonicalLevel)
        var parts: [Tensor] = []
        var order: [Int] = []
        for (level, feature) in levels.enumerated() {
            let members = assignment.indices.filter { assignment[$0] == level }
            guard !members.isEmpty else { continue }
            let levelBoxes = boxes.detached().indexSelecting(alongAxis: 0, indices: members)
            parts.append(
                roiAlign(
                    feature, boxes: levelBoxes, outputSize: outputSize, spatialScale: scales[level], samplingRatio: samplingRatio,
                    aligned: aligned))
            order += members
        }
        if parts.isEmpty { return Tensor(zeros: [0, levels[0].shape[1], outputSize.0, outputSize.1]) }
        var inverse = [Int](repeating: 0, count: order.count)
        for (position, box) in order.enumerated() { inverse[box] = position }
        return concatenated(parts, alongAxis: 0).indexSelecting(alongAxis: 0, indices: inverse)
    }

    /// The FPN level index (into `scales`) that `MultiScaleRoIAlign` pools each box from.
    public static func roiLevels(boxes: Tensor, scales: [Float], canonicalSize: Float = 224, canonicalLevel: Float = 4) -> [Int] {
        let levelMin = -log2f(scales[0]).rounded(), levelMax = -log2f(scales[scales.count - 1]).rounded()
        let pb = boxes.storage.base
        return (0..<boxes.shape[0]).map { k in
            let area = (pb[k * 5 + 3] - pb[k * 5 + 1]) * (pb[k * 5 + 4] - pb[k * 5 + 2])
            let target = (canonicalLevel + log2f(sqrtf(area) / canonicalSize) + 1e-6).rounded(.down)
            return Int(Swift.min(Swift.max(target, levelMin), levelMax) - levelMin)
        }
    }
}

/// The bilinear taps of one RoI: for each output bin, the feature positions and weights that average into it.
private struct RoISamples: @unchecked Sendable {
    struct Tap { let bin: Int; let offset: Int; let weight: Float }
    let image: Int
    var taps: [Tap] = []

    init(box: UnsafePointer<Float>, pooled: (Int, Int), spatialScale: Float, samplingRatio: Int, aligned: Bool, height: Int, width: Int) {
        image = Int(box[0])
        let offset: Float = aligned ? 0.5 : 0
        let startW = box[1] * spatialScale - offset, startH = box[2] * spatialScale - offset
        var roiW = box[3] * spatialScale - offset - startW, roiH = box[4] * spatialScale - offset - startH
        if !aligned {
            roiW = max(roiW, 1)
            roiH = max(roiH, 1)
        }
        let (ph, pw) = pooled
        let binH = roiH / Float(ph), binW = roiW / Float(pw)
        let gridH = samplingRatio > 0 ? samplingRatio : Int(ceilf(roiH / Float(ph)))
        let gridW = samplingRatio > 0 ? samplingRatio : Int(ceilf(roiW / Float(pw)))
        let count = Float(max(gridH * gridW, 1))
        for py in 0..<ph {
            for px in 0..<pw {
                let bin = py * pw + px
                for iy in 0..<gridH {
                    let y = startH + Float(py) * binH + (Float(iy) + 0.5) * binH / Float(gridH)
                    for ix in 0..<gridW {
                        let x = startW + Float(px) * binW + (Float(ix) + 0.5) * binW / Float(gridW)
                        appendBilinear(y: y, x: x, bin: bin, scale: 1 / count, height: height, width: width)
                    }
                }
            }
        }
    }

    private mutating func appendBilinear(y: Float, x: Float, bin: Int, scale: Float, height: Int, width: Int) {
        if y < -1 || y > Float(height) || x < -1 || x > Float(width) { return }
        var y = max(y, 0), x = max(x, 0)
        var yLow = Int(y), xLow = Int(x), yHigh: Int, xHigh: Int
        if yLow >= height - 1 {
            yLow = height - 1; yHigh = yLow; y = Float(yLow)
        } else {
            yHigh = yLow + 1
        }
        if xLow >= width - 1 {
            xLow = width - 1; xHigh = xLow; x = Float(xLow)
        } else {
            xHigh = xLow + 1
        }
        let ly = y - Float(yLow), lx = x - Float(xLow), hy = 1 - ly, hx = 1 - lx
        taps.append(Tap(bin: bin, offset: yLow * width + xLow, weight: hy * hx * scale))
        taps.append(Tap(bin: bin, offset: yLow * width + xHigh, weight: hy * lx * scale))
        taps.append(Tap(bin: bin, offset: yHigh * width + xLow, weight: ly * hx * scale))
        taps.append(Tap(bin: bin, offset: yHigh * width + xHigh, weight: ly * lx * scale))
    }
}
