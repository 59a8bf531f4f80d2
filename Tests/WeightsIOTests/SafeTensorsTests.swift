import Engine
import Foundation
import TestSupport
import Testing
import WeightsIO

struct SafeTensorsTests {
    @Test func roundTripsFloatTensors() throws {
        let path = NSTemporaryDirectory() + "odam-roundtrip-\(getpid()).safetensors"
        defer { unlink(path) }
        let tensors = [
            "a": Tensor(shape: [2, 3], values: [1, -2, 3.5, .infinity, 0, -0.25]),
            "b.c": Tensor(shape: [], values: [7]),
            "empty": Tensor(zeros: [0, 4]),
        ]
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: path)
        let (read, metadata) = try SafeTensors.read(contentsOf: path)
        #expect(metadata == ["format": "pt"])
        #expect(Set(read.keys) == Set(tensors.keys))
        for (name, tensor) in tensors {
            #expect(read[name]!.shape == tensor.shape)
            #expect(read[name]!.floatTensor().scalars == tensor.scalars)
        }
    }

    /// The fixture written by the Python safetensors library reads as PyTorch wrote it.
    @Test func readsPythonWrittenFile() throws {
        let path = fixturePath("mixed.safetensors", bundle: .module)
        let tensors = try SafeTensors.read(contentsOf: path).tensors
        #expect(tensors["transposed"]?.shape == [5, 6])
        #expect(tensors["scalar"]?.floatTensor().item == 2.5)
    }

    @Test func malformedFilesNameTheCause() throws {
        let valid = try SafeTensors.encode(["x": StoredTensor(dtype: .float32, shape: [4], bytes: [UInt8](repeating: 0, count: 16))])
        let cases: [([UInt8], String)] = [
            ([1, 2, 3], "too short"),
            (Array(valid.prefix(valid.count - 4)), "truncated"),
            ([255, 255, 255, 255, 0, 0, 0, 0] + valid.dropFirst(8), "header length"),
            (Array(valid.prefix(8)) + Array(repeating: UInt8(ascii: "x"), count: valid.count - 8), "not valid JSON"),
        ]
        for (bytes, phrase) in cases {
            #expect {
                try SafeTensors.read(bytes: bytes, file: "bad.safetensors")
            } throws: { error in
                "\(error)".contains("bad.safetensors") && "\(error)".contains(phrase)
            }
        }
    }
}
