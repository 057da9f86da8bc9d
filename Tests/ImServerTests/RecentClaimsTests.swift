import Testing

@testable import ImServer

@Suite("A node's memory of admitted tokens")
struct RecentClaimsTests {
    @Test("a token is admitted once until it expires; expired ones are forgotten")
    func onceUntilExpiry() async throws {
        let claims = RecentClaims(capacity: 10)
        let clock = ContinuousClock()
        #expect(claims.claim("a", until: clock.now.advanced(by: .seconds(60))))
        #expect(!claims.claim("a", until: clock.now.advanced(by: .seconds(60))))
        #expect(claims.claim("b", until: clock.now.advanced(by: .milliseconds(50))))
        try await clock.sleep(for: .milliseconds(100))
        #expect(claims.claim("b", until: clock.now.advanced(by: .seconds(60))), "b expired, so it may be claimed again")
        claims.forget("a")
        #expect(
            claims.claim("a", until: clock.now.advanced(by: .seconds(60))), "a refused handshake gives its token back")
    }

    @Test("bounded: beyond its capacity the oldest tokens are forgotten first")
    func bounded() {
        let claims = RecentClaims(capacity: 100)
        let later = ContinuousClock.now.advanced(by: .seconds(600))
        for index in 0..<10_000 { #expect(claims.claim("t\(index)", until: later)) }
        #expect(claims.count <= 100)
        #expect(!claims.claim("t9999", until: later), "the newest are remembered")
        #expect(claims.claim("t0", until: later), "the oldest were forgotten")
    }
}
