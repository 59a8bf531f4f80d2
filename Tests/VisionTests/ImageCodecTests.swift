import Engine
import Foundation
import TestSupport
import Testing
import Vision
import WeightsIO

struct ImageCodecTests {
    static let expected = try! FixtureTensors(path: fixturePath("expected.safetensors", bundle: .module))

    static func pixels(_ name: String) -> [UInt8] { expected.indices(name).values.map { UInt8($0) } }

    @Test(arguments: [
        "rgb.png", "rgba.png", "gray.png", "gray_alpha.png", "palette.png", "palette_transparent.png", "bilevel.png",
        "interlaced.png", "rgb16.png", "gray16.png", "baseline.jpg", "baseline444.jpg", "progressive.jpg", "gray.jpg",
        "exif_rotated.jpg",
    ])
    func decodesLikePIL(_ name: String) throws {
        let image = try ImageCodec().decode(contentsOf: fixturePath(name, bundle: .module))
        let shape = Self.expected.tensors[name]!.shape
        #expect(image.height == shape[0] && image.width == shape[1], "size")
        let want = Self.pixels(name)
        let differing = zip(image.pixels, want).filter { $0 != $1 }.count
        #expect(differing == 0, "\(name): \(differing) of \(want.count) samples differ from PIL")
    }

    @Test func appliesExifOrientationOnlyWhenAsked() throws {
        let path = fixturePath("exif_rotated.jpg", bundle: .module)
        let shown = try ImageCodec(appliesExifOrientation: true).decode(contentsOf: path)
        let want = Self.expected.tensors["exif_rotated.jpg.displayed"]!.shape
        #expect(shown.height == want[0] && shown.width == want[1])
        #expect(shown.pixels == Self.pixels("exif_rotated.jpg.displayed"))
    }

    @Test func refusesADecompressionBombBeforeDecoding() {
        #expect {
            try ImageCodec().decode(contentsOf: fixturePath("bomb.png", bundle: .module))
        } throws: { error in
            let error = error as! ImageError
            return error.kind == .tooLarge && error.description.contains("20000x20000") && error.description.contains("bomb.png")
        }
    }

    static func rocketBytes() throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: sampleImagePath("rocket.jpg"))))
    }

    @Test func badFilesGiveErrorsThatNameFileAndCause() throws {
        let rocket = try Self.rocketBytes()
        let cases: [(String, [UInt8], ImageError.Kind, String)] = [
            ("empty.jpg", [], .empty, "empty file"),
            ("notes.jpg", Array("these are notes, not a picture\n".utf8), .unknownFormat, "not a JPEG or PNG"),
            ("truncated.jpg", Array(rocket.prefix(rocket.count / 2)), .corrupt, "truncated JPEG"),
            ("truncated.png", Array((try FileBytesForTests.read(fixturePath("rgb.png", bundle: .module))).prefix(3000)), .corrupt, "PNG"),
            ("header.jpg", Array(rocket.prefix(40)), .corrupt, "JPEG"),
        ]
        for (file, bytes, kind, phrase) in cases {
            #expect {
                try ImageCodec().decode(bytes, file: file)
            } throws: { error in
                let error = error as! ImageError
                return error.kind == kind && error.description.hasPrefix(file + ": ") && error.description.contains(phrase)
            }
        }
    }

    @Test func missingFileIsNamed() {
        #expect {
            try ImageCodec().decode(contentsOf: "/nonexistent/picture.png")
        } throws: { error in
            "\(error)".contains("/nonexistent/picture.png") && "\(error)".contains("No such file")
        }
    }

    @Test func encodesPNGThatDecodesBack() throws {
        let width = 37, height = 21
        let rgb = (0..<(width * height * 3)).map { UInt8(($0 * 7) % 256) }
        let encoded = try ImageCodec.encodePNG(pixels: rgb, width: width, height: height, channels: 3)
        #expect(try ImageCodec().decode(encoded, file: "rgb").pixels == rgb)
        let gray = (0..<(width * height)).map { UInt8(($0 * 5) % 256) }
        let decodedGray = try ImageCodec().decode(
            try ImageCodec.encodePNG(pixels: gray, width: width, height: height, channels: 1), file: "gray")
        #expect(decodedGray.pixels == gray.flatMap { [$0, $0, $0] })
    }
}

enum FileBytesForTests {
    static func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
}
