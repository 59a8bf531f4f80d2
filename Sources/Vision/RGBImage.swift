import CImageCodecs
public import Engine
import Files

#if canImport(Glibc)
    import Glibc
#endif

/// An 8-bit RGB image, row-major, three bytes a pixel.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "\(pixels.count) bytes for a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The image mirrored left to right.
    public func flippedHorizontally() -> RGBImage {
        var mirrored = pixels
        for y in 0..<height {
            for x in 0..<width {
                let from = (y * width + x) * 3, to = (y * width + width - 1 - x) * 3
                mirrored[to] = pixels[from]
                mirrored[to + 1] = pixels[from + 1]
                mirrored[to + 2] = pixels[from + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: mirrored)
    }

    /// The image as a [3, H, W] float tensor with values in [0, 1] (torchvision's `to_tensor`).
    public func tensor() -> Tensor {
        let plane = width * height
        var tensor = Tensor(uninitializedShape: [3, height, width])
        tensor.withUnsafeMutableBufferPointer { out in
            pixels.withUnsafeBufferPointer { source in
                for i in 0..<plane {
                    out[i] = Float(source[3 * i]) / 255
                    out[plane + i] = Float(source[3 * i + 1]) / 255
                    out[2 * plane + i] = Float(source[3 * i + 2]) / 255
                }
            }
        }
        return tensor
    }
}

/// Decodes JPEG and PNG files into ``RGBImage``s, encodes PNGs.
public struct ImageCodec: Sendable {
    /// Images with more pixels are refused before decoding (a decompression-bomb guard).
    public var maximumPixels: Int
    /// Rotate and flip JPEGs as their EXIF orientation says (off by default, as torchvision's `read_image`).
    public var appliesExifOrientation: Bool

    /// The default pixel limit: 64 megapixels (a 2.3 GB peak for the detector's input tensors), lower on machines
    /// with less than 9 GB of memory, so that a 12 KB PNG of 100 million 1-bit pixels cannot take a worker's memory.
    public static let defaultMaximumPixels: Int = {
        let memory = Int(clamping: sysconf(Int32(_SC_PHYS_PAGES))) &* Int(clamping: sysconf(Int32(_SC_PAGESIZE)))
        return max(1_000_000, min(64_000_000, memory / 4 / peakBytesPerPixel))
    }()

    /// Peak resident bytes per decoded pixel of detecting an image (`odam detect` on a 100-megapixel PNG: 3.6 GB):
    /// what a memory limit allows in pixels.
    public static let peakBytesPerPixel = 36

    public init(maximumPixels: Int = ImageCodec.defaultMaximumPixels, appliesExifOrientation: Bool = false) {
        self.maximumPixels = maximumPixels
        self.appliesExifOrientation = appliesExifOrientation
    }

    /// Reads and decodes an image file; the error names the file and the cause.
    public func decode(contentsOf path: String) throws(ImageError) -> RGBImage {
        let bytes: [UInt8]
        do {
            bytes = try RegularFile.read(path)
        } catch {
            throw ImageError(file: path, kind: .unreadable, error.reason)
        }
        return try decode(bytes, file: path)
    }

    public func decode(_ bytes: [UInt8], file: String) throws(ImageError) -> RGBImage {
        guard !bytes.isEmpty else { throw ImageError(file: file, kind: .empty, "empty file (0 bytes)") }
        let isJPEG = bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
        let isPNG = bytes.count >= 8 && bytes.prefix(8).elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        guard isJPEG || isPNG else {
            let head = bytes.prefix(8).map { byte in
                let digits = String(byte, radix: 16)
                return digits.count == 1 ? "0" + digits : digits
            }.joined(separator: " ")
            throw ImageError(file: file, kind: .unknownFormat, "not a JPEG or PNG image (starts with \(head))")
        }
        var decoded = odam_image()
        let status = bytes.withUnsafeBufferPointer { buffer in
            isJPEG
                ? odam_decode_jpeg(buffer.baseAddress, buffer.count, Int64(maximumPixels), &decoded)
                : odam_decode_png(buffer.baseAddress, buffer.count, Int64(maximumPixels), &decoded)
        }
        defer { odam_image_free(decoded.pixels) }
        guard status == 0, let pixels = decoded.pixels else {
            let message = withUnsafeBytes(of: decoded.error) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw ImageError(file: file, kind: status == 2 ? .tooLarge : .corrupt, (isJPEG ? "JPEG: " : "PNG: ") + message)
        }
        let count = Int(decoded.width) * Int(decoded.height) * 3
        var image = RGBImage(
            width: Int(decoded.width), height: Int(decoded.height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
        if appliesExifOrientation && decoded.orientation != 1 {
            image = image.oriented(exif: Int(decoded.orientation))
        }
        return image
    }

    /// PNG bytes of 8-bit gray (`channels` 1) or RGB (`channels` 3) pixels.
    public static func encodePNG(pixels: [UInt8], width: Int, height: Int, channels: Int) throws(ImageError) -> [UInt8] {
        precondition(channels == 1 || channels == 3, "PNG encoding takes gray or RGB")
        precondition(pixels.count == width * height * channels, "pixel count does not match the size")
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var error = odam_image().error
        let status = pixels.withUnsafeBufferPointer { buffer in
            withUnsafeMutablePointer(to: &error) { errorPointer in
                errorPointer.withMemoryRebound(to: CChar.self, capacity: 256) { message in
                    odam_encode_png(buffer.baseAddress, Int32(width), Int32(height), Int32(channels), &output, &size, message)
                }
            }
        }
        defer { odam_image_free(output) }
        guard status == 0, let output else {
            let message = withUnsafeBytes(of: error) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            throw ImageError(file: "<png encoder>", kind: .encoding, message)
        }
        return Array(UnsafeBufferPointer(start: output, count: size))
    }
}

extension RGBImage {
    /// The image as EXIF orientation `exif` (1-8) says it should be displayed.
    public func oriented(exif: Int) -> RGBImage {
        let swapsAxes = exif >= 5
        let outW = swapsAxes ? height : width, outH = swapsAxes ? width : height
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<outH {
            for x in 0..<outW {
                // The source pixel shown at (x, y) for each orientation.
                let (sx, sy): (Int, Int)
                switch exif {
                case 2: (sx, sy) = (width - 1 - x, y)
                case 3: (sx, sy) = (width - 1 - x, height - 1 - y)
                case 4: (sx, sy) = (x, height - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, height - 1 - x)
                case 7: (sx, sy) = (width - 1 - y, height - 1 - x)
                case 8: (sx, sy) = (width - 1 - y, x)
                default: (sx, sy) = (x, y)
                }
                for c in 0..<3 { out[(y * outW + x) * 3 + c] = pixels[(sy * width + sx) * 3 + c] }
            }
        }
        return RGBImage(width: outW, height: outH, pixels: out)
    }
}
