public import Detection
import Engine
public import Vision

extension CandidateMaps {
    /// Odam-NMS's maps from heat maps of any explainer: each raw level map (cropped to the unpadded input) resized
    /// bilinearly (align_corners false) to `grid` and L2-normalized, as the official code resizes and normalizes
    /// its candidates' maps. Each is stored over the rectangle of its nonzero cells (outside it the map is 0).
    public init(heatMaps: [HeatMap], grid: ImageSize) {
        self.init(gridHeight: grid.height, gridWidth: grid.width)
        for map in heatMaps {
            let raw = map.raw
            let resized = raw.reshaped([1, 1, raw.shape[0], raw.shape[1]])
                .interpolated(size: (grid.height, grid.width), mode: .bilinear(alignCorners: false))
            let values = resized.scalars
            var top = grid.height, bottom = -1, left = grid.width, right = -1
            for y in 0..<grid.height {
                for x in 0..<grid.width where values[y * grid.width + x] != 0 {
                    top = min(top, y)
                    bottom = max(bottom, y)
                    left = min(left, x)
                    right = max(right, x)
                }
            }
            guard bottom >= 0 else {
                append([], over: Rectangle(row: 0, column: 0, rows: 0, columns: 0))
                continue
            }
            var kept: [Float] = []
            kept.reserveCapacity((bottom - top + 1) * (right - left + 1))
            for y in top...bottom { kept += values[(y * grid.width + left)...(y * grid.width + right)] }
            append(kept, over: Rectangle(row: top, column: left, rows: bottom - top + 1, columns: right - left + 1))
        }
    }
}
