import Foundation
import ImCore
@testable import ImNATS
import ImTesting
import Logging

/// nats-server with JetStream on loopback (``LocalServer/nats(port:tls:persistent:)``),
/// subjects and buckets under the prefix `it`.
struct NATSBackend: LocalServerBackend {
    static let name = "nats"
    static var isInstalled: Bool { findExecutable("nats-server") != nil }
    static let prefix = "it"

    let server: LocalServer

    static func start(persistent: Bool) async throws -> NATSBackend {
        NATSBackend(server: try await LocalServer.nats(persistent: persistent))
    }

    var url: String { "nats://127.0.0.1:\(server.port)?prefix=\(Self.prefix)&timeout=1" }

    func makeBackplane(logger: Logger) throws -> Backplane {
        try .nats(try NATSConfiguration(url: url), logger: logger)
    }

    /// Connection records in every `u.<user>` key of `it_connections`, and leases that ran out
    /// (by the server's clock), read through a presence of its own.
    func leftovers() async throws -> Int {
        var configuration = try NATSConfiguration(url: url)
        configuration.commandTimeout = .seconds(10)  // a scan on a loaded machine, not a node's budget
        let presence = try NATSPresence(configuration: configuration, logger: Logger(label: "nats-leftovers"))
        defer { presence.client.close() }
        try await waitUntil(timeout: .seconds(10)) { presence.client.health.isUp }
        try await presence.setUp()
        var count = 0
        for entry in try await presence.connections.scan("u.*", keysOnly: false) {
            count += try NATSPresence.decode(StoredConnection.self, entry.value).count
        }
        let now = try await presence.serverNow()
        for lease in try await presence.connections.scan("l.*", keysOnly: false) {
            if lease.value == NATSPresence.reaping || (lease.leaseEnd.map { $0 <= now } ?? false) { count += 1 }
        }
        return count
    }
}
