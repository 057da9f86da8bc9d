// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "ImServer",
    platforms: [.macOS(.v15)],
    products: [
        // The plugin SDK: what a backplane plugin implements and depends on, and nothing else.
        .library(name: "ImBackplane", targets: ["ImBackplane"]),
        // The conformance kit every backplane plugin runs.
        .library(name: "ImBackplaneTesting", targets: ["ImBackplaneTesting"]),
        .library(name: "ImCore", targets: ["ImCore"]),
        .library(name: "ImServer", targets: ["ImServer"]),
        .library(name: "ImServerAPI", targets: ["ImServerAPI"]),
        .library(name: "ImHelper", targets: ["ImHelper"]),
        .library(name: "ImClient", targets: ["ImClient"]),
        .library(name: "ImTesting", targets: ["ImTesting"]),
        .library(name: "ImRedis", targets: ["ImRedis"]),
        .library(name: "ImNATS", targets: ["ImNATS"]),
        .library(name: "ImPostgres", targets: ["ImPostgres"]),
        .library(name: "ImServerApp", targets: ["ImServerApp"]),
        .executable(name: "imserver", targets: ["imserver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.1.0"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64.git", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.21.0"),
    ],
    targets: [
        // Plugin SDK: Bus, Presence, Backplane, BackplaneFactory, identifiers, the memory backplane.
        .target(
            name: "ImBackplane",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Conformance kit: the Bus and Presence contract checks, for any plugin.
        .target(
            name: "ImBackplaneTesting",
            dependencies: [
                "ImBackplane",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // JSON read in one pass without Codable (no dependencies): request bodies, token claims,
        // client frames.
        .target(name: "ImJSON", swiftSettings: strict),
        // What nodes and helpers share: envelopes, subjects, connect tokens.
        .target(
            name: "ImCore",
            dependencies: [
                "ImBackplane", "ImJSON",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The node: WebSocket transport, per-loop registry and fan-out, router, limits.
        .target(
            name: "ImServer",
            dependencies: [
                "ImCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The HTTP server API (Hummingbird) and the demo: ImHelper over HTTP inside a node.
        .target(
            name: "ImServerAPI",
            dependencies: [
                "ImCore", "ImJSON", "ImServer", "ImHelper",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ImHelper",
            dependencies: [
                "ImCore", "ImJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The Swift client for apps and services: connects, reconnects, acks, events as an AsyncSequence.
        .target(
            name: "ImClient",
            dependencies: [
                "ImJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // Whole-node test harness: in-process cluster, WebSocket test client, local servers.
        .target(
            name: "ImTesting",
            dependencies: [
                "ImBackplaneTesting", "ImCore", "ImServer", "ImHelper", "ImClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .systemLibrary(
            name: "CHiredis",
            path: "Plugins/CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "ImRedis",
            dependencies: [
                "ImBackplane", "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Plugins/ImRedis",
            swiftSettings: strict
        ),
        // NATS: nats.c (Debian's libnats-dev) for the bus and presence.
        .systemLibrary(
            name: "CNATS",
            path: "Plugins/CNATS",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]
        ),
        .target(
            name: "ImNATS",
            dependencies: [
                "ImBackplane", "CNATS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Plugins/ImNATS",
            swiftSettings: strict
        ),
        // PostgreSQL: postgres-nio for the bus (LISTEN/NOTIFY) and presence (tables).
        .target(
            name: "ImPostgres",
            dependencies: [
                "ImBackplane",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Plugins/ImPostgres",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "imserver",
            dependencies: ["ImServerApp"],
            swiftSettings: strict
        ),
        .target(
            name: "ImServerApp",
            dependencies: [
                "ImCore", "ImServer", "ImServerAPI", "ImHelper", "ImRedis", "ImNATS", "ImPostgres",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImCoreTests",
            dependencies: [
                "ImCore", "ImJSON", "ImTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImRedisTests",
            dependencies: [
                "ImCore", "ImRedis", "ImTesting", "ImServer", "ImServerAPI", "ImHelper",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImPostgresTests",
            dependencies: [
                "ImPostgres", "ImTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImNATSTests",
            dependencies: [
                "ImNATS", "ImTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImIntegrationTests",
            dependencies: [
                "ImCore", "ImHelper", "ImRedis", "ImNATS", "ImPostgres", "ImTesting",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Integration/ImIntegrationTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImServerTests",
            dependencies: [
                "ImCore", "ImServer", "ImServerAPI", "ImHelper", "ImTesting", "ImClient",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImServerAppTests",
            dependencies: ["ImServerApp", "ImCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ImHelperTests",
            dependencies: ["ImHelper", "ImCore", "ImJSON", "ImTesting"],
            swiftSettings: strict
        ),
    ]
)
