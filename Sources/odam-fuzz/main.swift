import Foundation
import Runner
import Vision
import WeightsIO

/// Fuzz targets over the parsers of untrusted bytes: the image decoder (JPEG, PNG, EXIF), the weights readers
/// (safetensors, torch.save zip and pickle) and the job-spec reader (YAML and JSON).
///
/// Built normally, `odam-fuzz TARGET FILE...` replays files through a target (every input must decode or throw).
/// Built by `Tools/fuzz` with coverage, ASan and libFuzzer's driver linked in, `odam-fuzz TARGET [libFuzzer options]`
/// fuzzes it: the driver is looked up at run time, so the same source serves both builds.
enum FuzzTarget: String, CaseIterable {
    case image, weights, spec

    func run(_ bytes: [UInt8]) {
        switch self {
        case .image: _ = try? ImageCodec(maximumPixels: 4_000_000).decode(bytes, file: "fuzz")
        case .weights: _ = try? WeightsFile.read(bytes: bytes, file: "fuzz")
        case .spec:
            _ = try? JobSpec.decode(Data(bytes), file: "fuzz.yaml", json: false)
            _ = try? JobSpec.decode(Data(bytes), file: "fuzz.json", json: true)
        }
    }
}

nonisolated(unsafe) var selected = FuzzTarget.image

typealias FuzzerCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
typealias FuzzerDriver =
    @convention(c) (
        UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>, FuzzerCallback
    ) -> Int32

let arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else {
    FileHandle.standardError.write(Data("usage: odam-fuzz image|weights|spec FILE... (or libFuzzer options in a fuzzing build)\n".utf8))
    exit(2)
}
selected = target

if let symbol = dlsym(dlopen(nil, RTLD_NOW), "LLVMFuzzerRunDriver") {  // the executable itself
    // A fuzzing build: hand libFuzzer the arguments after the target's name.
    let driver = unsafeBitCast(symbol, to: FuzzerDriver.self)
    var argv: [UnsafeMutablePointer<CChar>?] = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) } + [nil]
    var argc = Int32(argv.count - 1)
    let status = argv.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var base = buffer.baseAddress
        return driver(&argc, &base) { data, count in
            selected.run(count == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: count)))
            return 0
        }
    }
    exit(status)
}

// A normal build: replay the files (folders are walked one level deep).
var replayed = 0
for path in arguments.dropFirst(2) {
    var isFolder: ObjCBool = false
    FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
    let files =
        isFolder.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { continue }
        target.run(Array(data))
        replayed += 1
    }
}
print("odam-fuzz \(target.rawValue): replayed \(replayed) inputs, none crashed")
