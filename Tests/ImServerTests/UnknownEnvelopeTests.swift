import ImCore
import ImTesting
import NIOCore
import Testing

/// A node during a rolling upgrade receives envelopes from a newer build: it drops what it
/// cannot read and keeps delivering.
@Suite("Envelopes a node cannot read")
struct UnknownEnvelopeTests {
    @Test("a newer version, an unknown kind and garbage on the node's subject are dropped; the next delivery arrives")
    func droppedNotFatal() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.connect("alice")
            let node = cluster.nodes[0].node
            let subject = node.core.configuration.subjects.node(node.nodeID)
            let unreadable: [[UInt8]] = [
                [Envelope.formatVersion + 1, 1, 0, 0],  // a format version from the future
                [Envelope.formatVersion, 200, 1, 2, 3],  // a kind from the future
                [Envelope.formatVersion],  // cut short
                [],
            ]
            for bytes in unreadable { try await cluster.backplane.bus.publish(ByteBuffer(bytes: bytes), to: subject) }
            let sent = try await cluster.helper.send(.text("still here"), from: "x", to: ["alice"])
            let message = try await alice.nextJSON()
            #expect(message["type"]?.string == "message" && message["id"]?.string == sent.id)
            #expect(node.core.healthResponse().status == .ok)
            await alice.close()
        }
    }
}
