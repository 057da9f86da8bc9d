import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import imbench

/// The benchmark's client TLS: which certificates it trusts, and that a secure endpoint gets
/// TLS while a plain one does not.
@Suite struct ClientTLSTests {
    @Test func contextsForEachTrust() throws {
        _ = try ClientTLS(TLSTrust())
        _ = try ClientTLS(TLSTrust(insecure: true))
    }

    @Test func caAndInsecureExcludeEachOther() {
        let error = #expect(throws: BenchError.self) { try ClientTLS(TLSTrust(caFile: "/tmp/ca.pem", insecure: true)) }
        #expect(error?.description.contains("--ca and --insecure") == true)
    }

    @Test func unreadableCAFileIsNamed() throws {
        let missing = "/nonexistent/imbench-ca.pem"
        let error = #expect(throws: BenchError.self) { try ClientTLS(TLSTrust(caFile: missing)) }
        #expect(error?.description.contains(missing) == true)
        let notPEM = FileManager.default.temporaryDirectory.appendingPathComponent("imbench-not-a-ca-\(getpid()).pem")
        try Data("not a certificate\n".utf8).write(to: notPEM)
        defer { try? FileManager.default.removeItem(at: notPEM) }
        #expect(throws: BenchError.self) { try ClientTLS(TLSTrust(caFile: notPEM.path)) }
    }

    @Test func ipAddressesGetNoServerName() throws {
        #expect(ClientTLS.isIPAddress("127.0.0.1") && ClientTLS.isIPAddress("::1"))
        #expect(!ClientTLS.isIPAddress("localhost") && !ClientTLS.isIPAddress("chat.example.test"))
        let tls = try ClientTLS(TLSTrust(insecure: true))
        _ = try tls.makeHandler(host: "127.0.0.1")
        _ = try tls.makeHandler(host: "chat.example.test")
    }

    @Test(.timeLimit(.minutes(1))) func secureEndpointWithoutTLSIsRefused() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connector = WebSocketConnector(recorders: Recorders(group: group), readyTimeout: .seconds(30))
        let attempt = connector.connect(
            to: try Endpoint(parsing: "wss://127.0.0.1:1/ws?token=x"), from: nil,
            tracker: SeqTracker(stride: 0, offset: 0), on: group.next())
        let error = await #expect(throws: BenchError.self) { try await attempt.get() }
        #expect(error?.description.contains("wss:// endpoint but no TLS") == true)
        try await group.shutdownGracefully()
    }

    @Test func secureAPIIsRefusedClearly() throws {
        let options = try ServerOptions.parse(["--api", "https://127.0.0.1:6502"])
        let error = #expect(throws: BenchError.self) { try options.targets() }
        #expect(error?.description.contains("plain http:// only") == true)
    }
}
