/// Heat maps of many candidates on one shared coarse grid, L2-normalized, each stored only over the rectangle
/// where it can be nonzero: what Odam-NMS compares.
///
/// A one-stage head's map is zero outside its receptive field (11x11 cells of its level), so most pairs of
/// candidates share no cell and their correlation is 0 without touching a value.
public struct CandidateMaps: Sendable {
    /// A map's support on the grid.
    public struct Rectangle: Sendable, Equatable {
        public var row: Int, column: Int, rows: Int, columns: Int
        public init(row: Int, column: Int, rows: Int, columns: Int) {
            (self.row, self.column, self.rows, self.columns) = (row, column, rows, columns)
        }
    }

    public let gridHeight: Int
    public let gridWidth: Int
    public private(set) var rectangles: [Rectangle] = []
    private var offsets: [Int] = []
    private var values: [Float] = []

    public var count: Int { rectangles.count }

    public init(gridHeight: Int, gridWidth: Int) {
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
    }

    /// Dense maps, `gridHeight · gridWidth` values each.
    public init(dense maps: [Float], gridHeight: Int, gridWidth: Int) {
        self.init(gridHeight: gridHeight, gridWidth: gridWidth)
        let plane = gridHeight * gridWidth
        precondition(plane > 0 && maps.count % plane == 0, "dense maps are not whole grids")
        for start in stride(from: 0, to: maps.count, by: plane) {
            append(Array(maps[start..<(start + plane)]), over: Rectangle(row: 0, column: 0, rows: gridHeight, columns: gridWidth))
        }
    }

    /// Adds a map given over `rectangle` (row-major values), clipped to the grid and L2-normalized (a zero map stays
    /// zero, as `F.normalize`).
    public mutating func append(_ map: [Float], over rectangle: Rectangle) {
        precondition(map.count == rectangle.rows * rectangle.columns, "map and rectangle sizes differ")
        let top = max(rectangle.row, 0), left = max(rectangle.column, 0)
        let bottom = min(rectangle.row + rectangle.rows, gridHeight), right = min(rectangle.column + rectangle.columns, gridWidth)
        let clipped = Rectangle(row: top, column: left, rows: max(bottom - top, 0), columns: max(right - left, 0))
        var kept: [Float] = []
        kept.reserveCapacity(clipped.rows * clipped.columns)
        for y in top..<max(bottom, top) {
            let base = (y - rectangle.row) * rectangle.columns - rectangle.column
            kept += map[(base + left)..<(base + right)]
        }
        var norm: Float = 0
        for v in kept { norm += v * v }
        let scale = 1 / max(norm.squareRoot(), 1e-12)
        offsets.append(values.count)
        values += kept.map { $0 * scale }
        rectangles.append(clipped)
    }

    /// Map `index` on the whole grid.
    public func dense(_ index: Int) -> [Float] {
        var grid = [Float](repeating: 0, count: gridHeight * gridWidth)
        let r = rectangles[index]
        for y in 0..<r.rows {
            for x in 0..<r.columns { grid[(r.row + y) * gridWidth + r.column + x] = values[offsets[index] + y * r.columns + x] }
        }
        return grid
    }

    /// The dot product of two normalized maps (their cosine), over the cells both rectangles cover.
    public func correlation(_ i: Int, _ j: Int) -> Float {
        let a = rectangles[i], b = rectangles[j]
        let top = max(a.row, b.row), bottom = min(a.row + a.rows, b.row + b.rows)
        let left = max(a.column, b.column), right = min(a.column + a.columns, b.column + b.columns)
        guard top < bottom && left < right else { return 0 }
        return values.withUnsafeBufferPointer { v in
            var sum: Float = 0
            for y in top..<bottom {
                let rowA = v.baseAddress! + offsets[i] + (y - a.row) * a.columns - a.column
                let rowB = v.baseAddress! + offsets[j] + (y - b.row) * b.columns - b.column
                for x in left..<right { sum += rowA[x] * rowB[x] }
            }
            return sum
        }
    }
}
