import Engine
import Foundation
import TestSupport
import Testing
import WeightsIO

/// FNV-1a 64 of a tensor's float32 bytes, as `Tools/make_weights_fixtures.py` computes it.
func fnv1a64(_ tensor: Tensor) -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    tensor.withUnsafeBufferPointer { values in
        for byte in UnsafeRawBufferPointer(values) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
    }
    let digits = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}

struct TensorDescription: Decodable {
    let shape: [Int]
    let dtype: String
    let fnv1a64: String
}

/// Every tensor of a checkpoint equals PyTorch's, bit for bit.
func expectBitExact(_ checkpoint: String, description: String) throws {
    let expected = try JSONDecoder().decode([String: TensorDescription].self, from: Data(contentsOf: URL(fileURLWithPath: description)))
    let tensors = try TorchCheckpoint.read(contentsOf: checkpoint)
    #expect(Set(tensors.keys) == Set(expected.keys))
    for (name, want) in expected {
        let stored = try #require(tensors[name], "missing \(name)")
        #expect(stored.shape == want.shape, "\(name) shape")
        #expect(fnv1a64(stored.floatTensor()) == want.fnv1a64, "\(name) differs from PyTorch's bytes")
    }
}

struct TorchCheckpointTests {
    static func fixture(_ name: String) -> String { fixturePath(name, bundle: .module) }

    @Test func squeezenetStateDictIsBitExact() throws {
        try expectBitExact(Self.fixture("squeezenet1_1.pth"), description: Self.fixture("squeezenet1_1.json"))
    }

    /// ResNet-50 (100 MB) is not committed: `Tools/make_weights_fixtures.py --resnet50 PATH` writes it, and this
    /// test reads it when `ODAM_RESNET50_PTH` names it.
    @Test(.enabled(if: ProcessEnvironment.value("ODAM_RESNET50_PTH") != nil))
    func resnet50StateDictIsBitExact() throws {
        let path = ProcessEnvironment.value("ODAM_RESNET50_PTH")!
        try expectBitExact(path, description: path + ".json")
    }

    @Test func wrappedCheckpointWithMixedDTypesAndViews() throws {
        let tensors = try TorchCheckpoint.read(contentsOf: Self.fixture("mixed.pth"))
        let expected = try SafeTensors.read(contentsOf: Self.fixture("mixed.safetensors")).tensors
        let dtypes = try JSONDecoder().decode(
            [String: String].self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixture("mixed.json"))))
        #expect(Set(tensors.keys) == Set(expected.keys), "the {\"model\": ...} wrapper is unwrapped")
        let names: [String: StoredDType] = [
            "float32": .float32, "float16": .float16, "bfloat16": .bfloat16, "float64": .float64, "int64": .int64, "bool": .bool,
        ]
        for (name, want) in expected {
            let stored = try #require(tensors[name])
            #expect(stored.dtype == names[dtypes[name]!], "\(name) dtype")
            #expect(mismatch(stored.floatTensor(), want.floatTensor(), rtol: 0, atol: 0) == nil, "\(name) values")
        }
        #expect(tensors["bn.num_batches_tracked"]!.integers() == [12_345_678_901])
    }

    @Test func hostilePickleIsRefusedAndNeverRun() throws {
        let marker = "/tmp/odam-pickle-was-executed"
        unlink(marker)
        #expect {
            try TorchCheckpoint.read(contentsOf: Self.fixture("hostile.pth"))
        } throws: { error in
            "\(error)".contains("refusing global") && "\(error)".contains("system")
        }
        #expect(access(marker, F_OK) != 0, "the pickle's call must never run")
    }

    @Test func truncatedCheckpointsFailCleanly() throws {
        let bytes = try FileBytes.read(Self.fixture("mixed.pth"))
        for length in [0, 3, 4, 100, bytes.count / 2, bytes.count - 30, bytes.count - 1] {
            #expect(throws: WeightsError.self, "truncated to \(length) bytes") {
                try TorchCheckpoint.read(bytes: Array(bytes.prefix(length)), file: "mixed.pth")
            }
        }
    }

    @Test func corruptedCheckpointsNeverCrash() throws {
        let bytes = try FileBytes.read(Self.fixture("mixed.pth"))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var copy = bytes
            for _ in 0..<4 { copy[Int.random(in: 0..<copy.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            // Either an error or a result; reaching the next iteration is the test.
            _ = try? TorchCheckpoint.read(bytes: copy, file: "corrupt.pth")
        }
    }

    @Test(arguments: [
        ("empty", [UInt8]()),
        ("text", Array("not a checkpoint at all\n".utf8)),
        ("legacy", [0x80, 0x02, 0x8A, 0x0A] + [UInt8](repeating: 0, count: 20)),
    ])
    func nonCheckpointsAreNamed(_ name: String, _ bytes: [UInt8]) {
        #expect {
            try WeightsFile.read(bytes: bytes, file: "\(name).pth")
        } throws: { error in
            "\(error)".hasPrefix("\(name).pth")
        }
    }
}
