import Foundation
import TestSupport
import Testing
import Vision

/// Image files that once crashed the decoder, were refused although valid, or hung a worker.
struct HostileImageTests {
    @Test func everyCaseIsListed() {
        #expect(HostileInput.cases(.image).count >= 10, "run Tools/make_hostile_inputs.py")
    }

    @Test(arguments: HostileInput.cases(.image))
    func decodesOrNamesTheCause(_ input: HostileInput) {
        do {
            let image = try ImageCodec().decode(contentsOf: input.path)
            #expect(input.expect == .ok, "\(input.file) decoded; expected an error containing '\(input.error)'")
            #expect(image.width >= 1 && image.height >= 1)
        } catch {
            #expect(input.expect == .error, "\(input.file): \(error)")
            #expect(error.description.contains(input.error), "\(error)")
            #expect(error.file == input.path)
        }
    }

    /// A CMYK JPEG (inverted, with Adobe's marker, as PIL and Adobe write it) decodes to PIL's own RGB.
    @Test func cmykMatchesPIL() throws {
        let decoded = try ImageCodec().decode(contentsOf: hostileInputsDirectory + "/images/cmyk.jpg")
        let expected = try ImageCodec().decode(contentsOf: hostileInputsDirectory + "/images/cmyk.expected.png")
        #expect(decoded.width == expected.width && decoded.height == expected.height)
        let difference = zip(decoded.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        // libjpeg-turbo versions (Debian's, PIL's bundled one) may differ by one step in the IDCT's rounding.
        #expect(difference <= 2, "largest channel difference \(difference)")
    }

    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let path = NSTemporaryDirectory() + "odam-fifo-\(getpid()).png"
        unlink(path)
        try #require(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        #expect(throws: ImageError.self) { try ImageCodec().decode(contentsOf: path) }
        do {
            _ = try ImageCodec().decode(contentsOf: path)
        } catch {
            #expect(error.reason.contains("FIFO"))
        }
    }

    @Test func thePixelLimitIsTheCallers() throws {
        let path = hostileInputsDirectory + "/images/one_pixel.png"
        #expect(throws: ImageError.self) { try ImageCodec(maximumPixels: 0).decode(contentsOf: path) }
        #expect(ImageCodec.defaultMaximumPixels <= 64_000_000)
    }

    /// A 4000x3 image at a 512-pixel maximum resizes to at least one pixel a side (0 made NaN boxes).
    @Test func resizingKeepsAtLeastOnePixel() {
        let transform = DetectionTransform(minSize: 320, maxSize: 512)
        #expect(transform.resizedSize(height: 3, width: 4000) == ImageSize(height: 1, width: 512))
        #expect(transform.resizedSize(height: 4000, width: 3) == ImageSize(height: 512, width: 1))
        #expect(transform.resizedSize(height: 1, width: 1) == ImageSize(height: 320, width: 320))
    }
}
