import Testing
import Vision

/// Boxes and captions drawn on overlays.
struct DrawingTests {
    static func gray(width: Int, height: Int) -> RGBImage {
        RGBImage(width: width, height: height, pixels: [UInt8](repeating: 128, count: width * height * 3))
    }

    func pixel(_ image: RGBImage, _ x: Int, _ y: Int) -> RGBImage.Color {
        let offset = 3 * (y * image.width + x)
        return RGBImage.Color(image.pixels[offset], image.pixels[offset + 1], image.pixels[offset + 2])
    }

    @Test func annotateOutlinesTheBoxAndWritesTheCaptionAboveIt() {
        var image = Self.gray(width: 200, height: 120)
        image.annotate(box: (x1: 50, y1: 40, x2: 150, y2: 100), caption: "person 0.93")
        // The outline: 2 px inside the box's edges, the inside and outside untouched.
        for (x, y) in [(50, 70), (51, 70), (148, 70), (149, 70), (100, 40), (100, 41), (100, 98), (100, 99)] {
            #expect(pixel(image, x, y) == .box, "(\(x), \(y)) is on the outline")
        }
        for (x, y) in [(100, 70), (52, 70), (47, 70), (152, 70), (100, 102)] {
            #expect(pixel(image, x, y) == RGBImage.Color(128, 128, 128), "(\(x), \(y)) is untouched")
        }
        // The caption: 11 glyphs of 7x12 pixels above the box, black text on the box's color.
        let band = (40 - 12 - 1)..<40
        let captionPixels = band.flatMap { y in (50..<(51 + 11 * 7)).map { pixel(image, $0, y) } }
        let black = captionPixels.filter { $0 == .black }.count
        #expect(black > 60 && black < captionPixels.count / 2, "\(black) text pixels")
        #expect(captionPixels.filter { $0 == .box }.count > captionPixels.count / 2)
        // Different captions draw differently.
        var other = Self.gray(width: 200, height: 120)
        other.annotate(box: (x1: 50, y1: 40, x2: 150, y2: 100), caption: "car 0.41")
        #expect(other.pixels != image.pixels)
    }

    @Test func aBoxAtTheTopPutsTheCaptionInsideAndBoxesOutsideTheImageAreClipped() {
        var image = Self.gray(width: 64, height: 48)
        image.annotate(box: (x1: -1e30, y1: 0, x2: 1e30, y2: 1e30), caption: "sign 0.50")
        #expect(pixel(image, 10, 0) == .box, "the top edge at row 0")
        #expect((3..<16).contains { y in (2..<40).contains { pixel(image, $0, y) == .black } }, "the caption sits inside the box")
        var nan = Self.gray(width: 8, height: 8)
        nan.annotate(box: (x1: .nan, y1: 2, x2: 6, y2: 6), caption: "\u{1F600}")
        #expect(nan.pixels.count == 8 * 8 * 3, "a box with NaN and a caption outside ASCII draw without trapping")
    }

    @Test func largeImagesGetLargerCaptions() {
        #expect(BitmapFont.size(of: "abc").width == 21 && BitmapFont.size(of: "abc", scale: 2).height == 24)
        var large = Self.gray(width: 1400, height: 900)
        large.annotate(box: (x1: 100, y1: 200, x2: 600, y2: 700), caption: "person 0.93")
        // Scale 2 (1400 / 640): 4 px lines.
        #expect(pixel(large, 103, 400) == .box && pixel(large, 104, 400) == RGBImage.Color(128, 128, 128))
    }
}
