import ImCore
import ImHelper
import ImTesting
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

@testable import ImServer

/// A bus whose backend is not reachable yet: until ``connect()`` it is down and refuses
/// subscribers, as the Bus contract allows before `run()` has connected. Then it is the
/// memory bus it wraps.
private final class NotYetConnectedBus: Bus {
    private let inner = MemoryBus()
    private let connected = Atomic<Bool>(false)
    private let refusals = Atomic<Int>(0)

    func connect() { connected.store(true, ordering: .relaxed) }
    var refusedSubscribers: Int { refusals.load(ordering: .relaxed) }

    var health: BackplaneHealth { connected.load(ordering: .relaxed) ? .up : .down("not connected yet") }
    func run() async throws { try await inner.run() }

    func publish(_ message: ByteBuffer, to subject: String) async throws {
        guard connected.load(ordering: .relaxed) else { throw BackplaneError.unavailable("not connected yet") }
        try await inner.publish(message, to: subject)
    }

    func publish(_ batch: [BusMessage]) async throws {
        guard connected.load(ordering: .relaxed) else { throw BackplaneError.unavailable("not connected yet") }
        try await inner.publish(batch)
    }

    func makeSubscriber() async throws -> any BusSubscriber {
        guard connected.load(ordering: .relaxed) else {
            refusals.add(1, ordering: .relaxed)
            throw BackplaneError.unavailable("not connected yet")
        }
        return try await inner.makeSubscriber()
    }
}

@Suite("A node whose backplane is not up yet")
struct StartupTests {
    @Test("keeps listening with health 503 while the bus refuses subscribers, then serves once it connects")
    func busDownAtStart() async throws {
        let bus = NotYetConnectedBus()
        try await TestCluster.with(backplane: Backplane(bus: bus, presence: MemoryPresence()), waitUntilLinked: false) {
            cluster in
            let node = cluster.nodes[0]
            try await waitUntil(timeout: .seconds(20)) { bus.refusedSubscribers >= 2 }
            #expect(node.node.core.healthResponse().status == .serviceUnavailable)
            // Not reachable yet: a handshake now is refused rather than left unreachable.
            do {
                let early = try await cluster.connect("early")
                await early.close()
                Issue.record("a handshake was admitted before the node subscribed to its subject")
            } catch TestClientError.refused(let status, let reason) {
                #expect(status == 503 && reason == "node is starting, retry shortly")
            }
            bus.connect()
            try await waitUntil(timeout: .seconds(20)) { node.node.core.healthResponse().status == .ok }
            let client = try await waitForConnect(cluster, "late")
            let result = try await cluster.helper.send(.text("after the bus came up"), from: "x", to: ["late"])
            #expect(try await client.next(type: "message", timeout: .seconds(20))["id"]?.string == result.id)
        }
    }

    /// Connects once the node has linked to the backplane (health 200 can come a moment before).
    private func waitForConnect(_ cluster: TestCluster, _ user: ClientID) async throws -> TestClient {
        var client: TestClient?
        try await waitUntil(timeout: .seconds(10)) {
            client = try? await cluster.connect(user)
            return client != nil
        }
        return try #require(client)
    }
}
