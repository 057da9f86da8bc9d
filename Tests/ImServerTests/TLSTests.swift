import Foundation
import ImCore
import ImServer
import ImTesting
import Testing

/// `wss://` served by the node itself, and certificates reloaded without dropping connections.
@Suite("TLS on the node")
struct TLSTests {
    /// Two certificate authorities, each with a certificate for 127.0.0.1.
    private struct Certificates {
        let first = try? LocalServer.certificateAuthorityAndServerCertificate()
        let second = try? LocalServer.certificateAuthorityAndServerCertificate()
    }

    /// Replaces the contents of `path` with those of `source` (as a deployment tool would).
    private func replace(_ path: String, with source: String) throws {
        try Data(contentsOf: URL(fileURLWithPath: source)).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private func wssURL(_ cluster: TestCluster, for user: ClientID) async throws -> String {
        let token = try await cluster.helper.tokens.mint(for: user)
        return cluster.nodes[0].url.replacingOccurrences(of: "ws://", with: "wss://") + "?token=" + token
    }

    private func connects(_ cluster: TestCluster, _ user: ClientID, trusting authority: String) async -> Bool {
        var options = TestClient.Options()
        options.trustedAuthority = authority
        guard let url = try? await wssURL(cluster, for: user),
            let client = try? await TestClient.connect(to: url, options: options)
        else { return false }
        defer { Task { await client.close() } }
        return (try? await client.next(type: "ready"))?["client"]?.string == user.rawValue
    }

    @Test("a node with a certificate serves wss://; a reload serves the new one to new connections and keeps open ones")
    func wssAndReload() async throws {
        let certificates = Certificates()
        let first = try #require(certificates.first)
        let second = try #require(certificates.second)
        let tls = try ReloadableTLS(certificatePath: first.certificate, keyPath: first.key, setting: "public.tls")
        try await TestCluster.with(configure: { configuration, _ in configuration.tls = tls }) { cluster in
            var options = TestClient.Options()
            options.trustedAuthority = first.authority
            let open = try await TestClient.connect(to: try await wssURL(cluster, for: "alice"), options: options)
            #expect(try await open.next(type: "ready")["client"]?.string == "alice")
            #expect(await !connects(cluster, "eve", trusting: second.authority), "not the second certificate yet")

            try replace(first.certificate, with: second.certificate)
            try replace(first.key, with: second.key)
            try tls.reload()
            #expect(await connects(cluster, "bob", trusting: second.authority), "new connections get the new one")
            #expect(await !connects(cluster, "carl", trusting: first.authority))
            try await cluster.helper.send(.text("still here"), from: "x", to: ["alice"])
            #expect(try await open.next(type: "message")["data"] == .string("still here"), "the open one stays")

            // A broken file: the reload fails and the certificate in use stays.
            try "not a key".write(toFile: first.key, atomically: true, encoding: .utf8)
            #expect(throws: TLSSetupError.self) { try tls.reload() }
            #expect(await connects(cluster, "dan", trusting: second.authority))
            await open.close()
        }
    }

    @Test("a key that is not the certificate's, or a missing file, is refused with the files named")
    func badPairs() throws {
        let certificates = Certificates()
        let first = try #require(certificates.first)
        let second = try #require(certificates.second)
        #expect {
            try ReloadableTLS(certificatePath: first.certificate, keyPath: second.key, setting: "public.tls")
        } throws: { error in
            guard case .mismatch = error as? TLSSetupError else { return false }
            return "\(error)".contains(second.key) && "\(error)".contains(first.certificate)
        }
        #expect {
            try ReloadableTLS(certificatePath: "/nonexistent/cert.pem", keyPath: first.key, setting: "public.tls")
        } throws: { error in
            "\(error)".contains("public.tls.certificate") && "\(error)".contains("/nonexistent/cert.pem")
        }
        #expect {
            try ReloadableTLS(certificatePath: first.certificate, keyPath: first.certificate, setting: "api.tls")
        } throws: { error in
            "\(error)".contains("api.tls.key")
        }
    }
}
