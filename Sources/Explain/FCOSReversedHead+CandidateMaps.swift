public import Detection
import Engine
public import Vision

extension FCOSReversedHead {
    /// The grid Odam-NMS compares maps on: the resized input divided by `gridStride` (the official `H_in // 16`,
    /// a short edge of 50 for an 800-pixel input).
    public static func candidateGrid(inputSize: ImageSize, gridStride: Int = 16) -> ImageSize {
        CandidateGrid.stride(gridStride).size(inputSize: inputSize)
    }

    /// Class-logit maps of `predictions` for Odam-NMS: each window map on its level, cropped to the unpadded input
    /// as ``HeatMap`` crops, resized bilinearly (align_corners false) to ``candidateGrid(inputSize:gridStride:)`` and
    /// L2-normalized. Only the grid cells the window reaches are computed; the values equal those of resizing the
    /// whole level map.
    public func candidateMaps(trace: ForwardTrace, result: ImageDetections, image: Int = 0, predictions: [Int], gridStride: Int = 16)
        -> CandidateMaps
    {
        let grid = Self.candidateGrid(inputSize: result.inputSize, gridStride: gridStride)
        var resized = [(values: [Float], rectangle: CandidateMaps.Rectangle)?](repeating: nil, count: predictions.count)
        var tapsByLevel: [Int: GridTaps] = [:]
        forEachWindow(trace: trace, result: result, image: image, predictions: predictions, targets: [.logit]) { window in
            let key = window.levelSize.height << 20 | window.levelSize.width
            if tapsByLevel[key] == nil { tapsByLevel[key] = GridTaps(window: window, inputSize: result.inputSize, grid: grid) }
            resized[window.member] = Self.resize(window, tapsByLevel[key]!)
        }
        var maps = CandidateMaps(gridHeight: grid.height, gridWidth: grid.width)
        for entry in resized {
            let (values, rectangle) = entry!
            maps.append(values, over: rectangle)
        }
        return maps
    }

    /// How a window's level maps onto the candidate grid: the level's cells over the unpadded input (as ``HeatMap``
    /// crops) and the bilinear taps (align_corners false) from them to the grid.
    package struct GridTaps {
        package var rows: InterpolationTaps, columns: InterpolationTaps
        package var height: Int, width: Int

        package init(window: Window, inputSize: ImageSize, grid: ImageSize) {
            (height, width) = HeatMap.croppedSize(levelSize: window.levelSize, stride: window.stride, inputSize: inputSize)
            let mode = Tensor.InterpolationMode.bilinear(alignCorners: false)
            rows = InterpolationTaps(inSize: height, outSize: grid.height, mode: mode)
            columns = InterpolationTaps(inSize: width, outSize: grid.width, mode: mode)
        }
    }

    /// The part of the resized map that the window can reach.
    package static func resize(_ window: Window, _ taps: GridTaps) -> (values: [Float], rectangle: CandidateMaps.Rectangle) {
        let (rows, columns, height, width) = (taps.rows, taps.columns, taps.height, taps.width)
        let top = max(window.row - radius, 0), bottom = min(window.row + radius, height - 1)
        let left = max(window.column - radius, 0), right = min(window.column + radius, width - 1)
        func reach(_ taps: InterpolationTaps, _ low: Int, _ high: Int) -> ClosedRange<Int>? {
            let touching = taps.low.indices.filter { o in
                (taps.low[o] >= low && taps.low[o] <= high && taps.lowWeight[o] != 0)
                    || (taps.high[o] >= low && taps.high[o] <= high && taps.highWeight[o] != 0)
            }
            guard let first = touching.first, let last = touching.last, low <= high else { return nil }
            return first...last
        }
        guard let outRows = reach(rows, top, bottom), let outColumns = reach(columns, left, right) else {
            return ([], CandidateMaps.Rectangle(row: 0, column: 0, rows: 0, columns: 0))
        }
        let source = window.values.storage.base
        // The window's value at a level cell, zero outside the window (where the level map is zero).
        func value(_ y: Int, _ x: Int) -> Float {
            guard y >= top && y <= bottom && x >= left && x <= right else { return 0 }
            return source[(y - window.row + radius) * side + x - window.column + radius]
        }
        var values: [Float] = []
        values.reserveCapacity(outRows.count * outColumns.count)
        for oy in outRows {
            let y0 = rows.low[oy], y1 = rows.high[oy], wy0 = rows.lowWeight[oy], wy1 = rows.highWeight[oy]
            for ox in outColumns {
                let x0 = columns.low[ox], x1 = columns.high[ox], wx0 = columns.lowWeight[ox], wx1 = columns.highWeight[ox]
                // The order of Tensor.interpolated's sum, so that the values are the same to the bit.
                values.append(wy0 * (wx0 * value(y0, x0) + wx1 * value(y0, x1)) + wy1 * (wx0 * value(y1, x0) + wx1 * value(y1, x1)))
            }
        }
        return (
            values,
            CandidateMaps.Rectangle(row: outRows.lowerBound, column: outColumns.lowerBound, rows: outRows.count, columns: outColumns.count)
        )
    }
}
