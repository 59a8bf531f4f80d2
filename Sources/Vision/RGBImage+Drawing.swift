extension RGBImage {
    /// An RGB color.
    public struct Color: Sendable, Equatable {
        public var red: UInt8, green: UInt8, blue: UInt8
        public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) { (self.red, self.green, self.blue) = (red, green, blue) }

        public static let white = Color(255, 255, 255)
        public static let black = Color(0, 0, 0)
        /// The box color of overlays: visible on jet's blue-to-red maps and on photos.
        public static let box = Color(0, 255, 0)
    }

    /// Sets the pixel when it lies inside the image.
    mutating func set(x: Int, y: Int, _ color: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let offset = 3 * (y * width + x)
        (pixels[offset], pixels[offset + 1], pixels[offset + 2]) = (color.red, color.green, color.blue)
    }

    /// Fills the rectangle [x1, x2) x [y1, y2), clipped to the image.
    public mutating func fill(x1: Int, y1: Int, x2: Int, y2: Int, _ color: Color) {
        for y in max(y1, 0)..<max(min(y2, height), max(y1, 0)) {
            for x in max(x1, 0)..<max(min(x2, width), max(x1, 0)) { set(x: x, y: y, color) }
        }
    }

    /// Draws the outline of the box (x1, y1, x2, y2 in pixels) `thickness` pixels wide, inside the box, clipped.
    public mutating func strokeRectangle(x1: Float, y1: Float, x2: Float, y2: Float, thickness: Int, _ color: Color) {
        guard [x1, y1, x2, y2].allSatisfy(\.isFinite) else { return }
        // Clamped before converting: a box far outside the image must not overflow Int.
        func pixel(_ value: Float, _ limit: Int) -> Int { Int(min(max(value.rounded(), -1), Float(limit + 1))) }
        let (left, top, right, bottom) = (pixel(x1, width), pixel(y1, height), pixel(x2, width), pixel(y2, height))
        fill(x1: left, y1: top, x2: right, y2: top + thickness, color)
        fill(x1: left, y1: bottom - thickness, x2: right, y2: bottom, color)
        fill(x1: left, y1: top, x2: left + thickness, y2: bottom, color)
        fill(x1: right - thickness, y1: top, x2: right, y2: bottom, color)
    }

    /// Draws `text` with its top-left corner at (`x`, `y`) on a filled background one font pixel wider all round.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int, foreground: Color, background: Color) {
        let size = BitmapFont.size(of: text, scale: scale)
        fill(x1: x - scale, y1: y - scale, x2: x + size.width + scale, y2: y + size.height, background)
        for (index, byte) in text.utf8.enumerated() {
            for row in 0..<BitmapFont.glyphHeight {
                for column in 0..<BitmapFont.glyphWidth where BitmapFont.isSet(byte, x: column, y: row) {
                    let left = x + (index * BitmapFont.glyphWidth + column) * scale
                    fill(x1: left, y1: y + row * scale, x2: left + scale, y2: y + (row + 1) * scale, foreground)
                }
            }
        }
    }

    /// The box outlined and its caption above it (inside its top edge when there is no room above), sized to the
    /// image: 2 px lines and 1x text up to 640 px, thicker and larger beyond.
    public mutating func annotate(box: (x1: Float, y1: Float, x2: Float, y2: Float), caption: String, color: Color = .box) {
        let scale = max(1, max(width, height) / 640)
        strokeRectangle(x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2, thickness: 2 * scale, color)
        let textHeight = BitmapFont.size(of: caption, scale: scale).height
        let left = Int(min(max(box.x1.isFinite ? box.x1.rounded() : 0, 0), Float(max(width - 1, 0))))
        let boxTop = Int(min(max(box.y1.isFinite ? box.y1.rounded() : 0, 0), Float(max(height - 1, 0))))
        let top = boxTop - textHeight - scale >= 0 ? boxTop - textHeight : boxTop + 2 * scale + scale
        drawText(caption, x: left + scale, y: top, scale: scale, foreground: .black, background: color)
    }
}
