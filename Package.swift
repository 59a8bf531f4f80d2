// swift-tools-version:6.1
import PackageDescription

// MARK: - Shared settings

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// -Ounchecked only where numeric kernels index buffers in tight loops with bounds checked at the op level, and no
// byte of a file is parsed: Engine, NN, Explain (maps of our own tensors), Synthesis and the benchmarks. Every module
// that reads files (WeightsIO, Vision's codecs, Detection's COCO and CrowdHuman readers, the runner) keeps Swift's
// checks, so that a failed precondition or an overflow traps instead of being undefined behaviour. Measured side by
// side (odam bench explain/nms/detect): only Soft-NMS slowed, and its loop now runs on buffer pointers.
let kernelSettings: [SwiftSetting] =
    swiftSettings + [
        .unsafeFlags(["-Ounchecked"], .when(configuration: .release))
    ]

let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")

let package = Package(
    name: "odam",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "odam", targets: ["odam"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "WeightsIO", targets: ["WeightsIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // MARK: - C libraries
        .systemLibrary(
            name: "CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CPNG", pkgConfig: "libpng16",
            providers: [.apt(["libpng-dev"])]),
        .systemLibrary(
            name: "CJPEG", pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"])]),

        .target(name: "CSystem"),
        .target(
            name: "CImageCodecs", dependencies: ["CPNG", "CJPEG"],
            cSettings: [.unsafeFlags(["-O2"])]),

        // MARK: - Engine
        .target(name: "Engine", dependencies: ["CBLAS"], swiftSettings: kernelSettings),
        .target(name: "NN", dependencies: ["Engine"], swiftSettings: kernelSettings),
        .target(name: "Files", swiftSettings: swiftSettings),
        .target(name: "WeightsIO", dependencies: ["Engine", "Files"], swiftSettings: swiftSettings),
        .target(name: "Vision", dependencies: ["Engine", "CImageCodecs", "Files"], swiftSettings: swiftSettings),
        .target(name: "Detection", dependencies: ["Engine", "NN", "Vision", "WeightsIO"], swiftSettings: swiftSettings),
        .target(name: "Explain", dependencies: ["Engine", "NN", "Vision", "Detection"], swiftSettings: kernelSettings),
        .target(name: "Synthesis", dependencies: ["NN", "Vision"], swiftSettings: kernelSettings),
        .target(name: "Digest", swiftSettings: swiftSettings),
        .target(name: "SpecDecoding", swiftSettings: swiftSettings),
        .target(name: "Processes", dependencies: ["CSystem", logging], swiftSettings: swiftSettings),
        .target(name: "Postgres", dependencies: ["CLibPQ", "Digest", "Processes"], swiftSettings: swiftSettings),
        .target(name: "ObjectStore", dependencies: ["CCurl", "Digest"], swiftSettings: swiftSettings),
        .target(
            name: "Runner",
            dependencies: [
                "Engine", "Vision", "WeightsIO", "Detection", "Explain", "Postgres", "ObjectStore", "DefaultModel", "Digest", "Files",
                "Processes",
                "SpecDecoding", .product(name: "Yams", package: "Yams"), logging,
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Reports",
            dependencies: [
                "Engine", "NN", "Vision", "WeightsIO", "Detection", "Explain", "ObjectStore", "Postgres", "Processes", "Runner",
                "Synthesis", "DefaultModel",
            ],
            swiftSettings: swiftSettings),
        .target(name: "DefaultModel", resources: [.copy("Models")], swiftSettings: swiftSettings),
        .target(
            name: "Training", dependencies: ["Engine", "NN", "Vision", "WeightsIO", "Detection", "Explain", "SpecDecoding"],
            swiftSettings: swiftSettings),
        .target(
            name: "Benchmarks", dependencies: ["Engine", "NN", "Vision", "Detection", "Explain", "Synthesis", "Training", "CBLAS"],
            swiftSettings: kernelSettings),

        // MARK: - Executable
        .executableTarget(
            name: "odam",
            dependencies: [
                "Engine", "NN", "WeightsIO", "Vision", "Detection", "Explain", "Synthesis", "Training", "DefaultModel", "Postgres",
                "Runner", "Reports", "Processes", "ObjectStore",
                "Benchmarks",
                argumentParser, logging,
            ],
            swiftSettings: swiftSettings),

        // Fuzz targets over the parsers of untrusted bytes (Tools/fuzz builds them with libFuzzer).
        .executableTarget(name: "odam-fuzz", dependencies: ["Runner", "Vision", "WeightsIO"], swiftSettings: swiftSettings),

        // MARK: - Tests
        .target(
            name: "TestSupport", dependencies: ["Engine", "WeightsIO"], path: "Tests/TestSupport",
            swiftSettings: swiftSettings),
        // What the integration tests share: the tests' PostgreSQL and S3 servers, a fault proxy, the odam binary.
        .target(
            name: "ServiceTestSupport", dependencies: ["TestSupport", "Postgres", "ObjectStore", "Processes"],
            path: "Tests/ServiceTestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "EngineTests", dependencies: ["Engine", "NN", "WeightsIO", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(
            name: "DetectionTests", dependencies: ["Engine", "NN", "Vision", "Detection", "DefaultModel", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(
            name: "VisionTests", dependencies: ["Engine", "Vision", "WeightsIO", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "ServiceTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ExplainTests", dependencies: ["Engine", "NN", "Vision", "Detection", "Explain", "DefaultModel", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(
            name: "NNTests", dependencies: ["Engine", "NN", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(
            name: "SynthesisTests", dependencies: ["Vision", "Detection", "Synthesis", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TrainingTests", dependencies: ["Engine", "NN", "Detection", "Explain", "Synthesis", "Training", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport", "ServiceTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ReportsTests", dependencies: ["Reports", "Runner", "Detection", "Engine", "Synthesis", "Vision"],
            swiftSettings: swiftSettings),
        .testTarget(name: "ProcessesTests", dependencies: ["Processes", logging], swiftSettings: swiftSettings),
        .testTarget(name: "DigestTests", dependencies: ["Digest"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RunnerTests",
            dependencies: [
                "Engine", "Detection", "Explain", "WeightsIO", "Synthesis", "DefaultModel", "Runner", "Vision", "Postgres", "ObjectStore",
                "TestSupport", "ServiceTestSupport", "Digest", "Processes", "Files", "Reports", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "ObjectStoreTests", dependencies: ["ObjectStore", "Digest", "TestSupport", "ServiceTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WeightsIOTests", dependencies: ["Engine", "WeightsIO", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
    ]
)
