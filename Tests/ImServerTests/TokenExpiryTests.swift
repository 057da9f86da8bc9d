import Foundation
import ImClient
import ImCore
import ImServer
import ImTesting
import Testing

/// Correctly signed tokens with absurd expiries are refused at the handshake; the node lives on.
@Suite("Tokens with absurd expiries")
struct TokenExpiryTests {
    /// A token for `user` signed with the cluster's secret, expiring at `exp` (seconds since 1970).
    static func token(_ user: ClientID, exp: TimeInterval, secret: String) async throws -> String {
        var minter = try await ConnectTokens(secret: secret)
        minter.maximumLifetime = .seconds(Int64.max)
        return try await minter.mint(for: user, lifetime: .zero, now: Date(timeIntervalSince1970: exp))
    }

    @Test(
        "a signed token expiring in 9.3e18 s or 1e300 s, or in an hour, is refused with 401; the node serves on",
        arguments: [9.3e18, 1e300, 1.7976931348623157e308, 3600])
    func absurdExpiry(offset: Double) async throws {
        let secret = "test-secret-of-at-least-32-bytes!!"
        try await TestCluster.with(secret: secret) { cluster in
            let exp = offset == 3600 ? Date().timeIntervalSince1970 + offset : offset
            let token = try await Self.token("mallory", exp: exp, secret: secret)
            do {
                let client = try await TestClient.connect(to: cluster.nodes[0].url + "?token=" + token)
                await client.close()
                Issue.record("the upgrade was accepted")
            } catch TestClientError.refused(let status, let reason) {
                #expect(status == 401)
                #expect(reason.contains("token"), "\(reason)")
            }
            let probe = try await cluster.session("probe")
            let id = try await cluster.helper.broadcast(.text("still serving"))
            #expect(try await probe.nextMessage().id == id)
        }
    }
}
