// swift-tools-version: 6.2
import PackageDescription

// A backplane plugin written outside the ImServer repository, as a plugin author would: it
// depends on ImServer's plugin SDK (ImBackplane) and conformance kit (ImBackplaneTesting), and
// ships the stock `imserver` with its scheme added (ImServerApp).
let package = Package(
    name: "CustomBackplane",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ImSharedDirectory", targets: ["ImSharedDirectory"]),
        .executable(name: "imserver-shared-dir", targets: ["imserver-shared-dir"]),
    ],
    dependencies: [
        .package(name: "ImServer", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        .target(
            name: "ImSharedDirectory",
            dependencies: [
                .product(name: "ImBackplane", package: "ImServer"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "imserver-shared-dir",
            dependencies: ["ImSharedDirectory", .product(name: "ImServerApp", package: "ImServer")]
        ),
        .testTarget(
            name: "ImSharedDirectoryTests",
            dependencies: [
                "ImSharedDirectory",
                .product(name: "ImBackplane", package: "ImServer"),
                .product(name: "ImBackplaneTesting", package: "ImServer"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // End to end: nodes in the test process on a shared-dir:// backplane (TestCluster), and two
        // real imserver-shared-dir processes sharing a directory, driven like a back-end would.
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "ImSharedDirectory",
                "imserver-shared-dir",
                .product(name: "ImBackplane", package: "ImServer"),
                .product(name: "ImCore", package: "ImServer"),
                .product(name: "ImHelper", package: "ImServer"),
                .product(name: "ImTesting", package: "ImServer"),
            ]
        ),
    ]
)
