/// A fixed-width bitmap font (printable ASCII, 7x12 pixels a glyph) for captions drawn on images without a font
/// library; other characters draw as '?'.
public enum BitmapFont {
    /// Whether pixel (`x`, `y`) of the glyph of `byte` is set.
    static func isSet(_ byte: UInt8, x: Int, y: Int) -> Bool {
        let code = (32...126).contains(byte) ? Int(byte) : Int(UInt8(ascii: "?"))
        return glyphRows[(code - 32) * glyphHeight + y] & (0x80 >> UInt8(x)) != 0
    }

    /// The caption's size in pixels at `scale` (each font pixel drawn as scale x scale).
    public static func size(of text: String, scale: Int = 1) -> (width: Int, height: Int) {
        (text.utf8.count * glyphWidth * scale, glyphHeight * scale)
    }
}
