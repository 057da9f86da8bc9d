// swift-tools-version: 6.2
import PackageDescription

// The load generator (`imbench`) and its tests, in a package of their own so that what a
// downstream package resolves from ImServer does not include the benchmark's dependencies
// (hdrhistogram-swift). NIOSSL is ImServer's too (the node serves wss://): the benchmark's
// clients speak TLS with it. It builds against ImServer's public products, like any other client.
//
//   swift build -c release --package-path Benchmarks --product imbench
//   (cd Benchmarks && swift build --build-tests && swift test --skip-build)

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "ImBench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "imbench", targets: ["imbench"])
    ],
    dependencies: [
        .package(name: "ImServer", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
    ],
    targets: [
        // Fan-out, connections and cluster scenarios against running imserver nodes.
        .executableTarget(
            name: "imbench",
            dependencies: [
                .product(name: "ImCore", package: "ImServer"),
                .product(name: "ImHelper", package: "ImServer"),
                .product(name: "ImRedis", package: "ImServer"),
                .product(name: "ImNATS", package: "ImServer"),
                .product(name: "ImPostgres", package: "ImServer"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "imbenchTests",
            dependencies: [
                "imbench",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
