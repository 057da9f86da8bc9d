@testable import ImCore
import Testing

@Suite("Unique ids")
struct UniqueIDsTests {
    @Test("ids are the random prefix then the counter, in hex, each different; generators have different prefixes")
    func shape() {
        let ids = UniqueIDs(randomBytes: 8, counterDigits: 16)
        let drawn = (0..<1000).map { _ in ids.next() }
        #expect(Set(drawn).count == 1000)
        let hexDigits = Set("0123456789abcdef")
        #expect(drawn.allSatisfy { $0.count == 32 && $0.allSatisfy(hexDigits.contains) })
        #expect(Set(drawn.map { $0.prefix(16) }).count == 1)
        #expect(drawn[0].suffix(16) == "0000000000000001")
        #expect(drawn[999].suffix(16) == "00000000000003e8")
        let other = UniqueIDs(randomBytes: 8, counterDigits: 16).next()
        #expect(other.prefix(16) != drawn[0].prefix(16))
    }

    @Test("a short counter keeps its lowest digits")
    func shortCounter() {
        let ids = UniqueIDs(randomBytes: 1, counterDigits: 1)
        let drawn = (0..<17).map { _ in ids.next() }
        #expect(drawn.map { $0.count } == Array(repeating: 3, count: 17))
        #expect(drawn[14].suffix(1) == "f")
        #expect(drawn[15].suffix(1) == "0")
        #expect(drawn[16].suffix(1) == "1")
    }

    @Test("tokens minted by one instance carry different ids")
    func tokenIDs() async throws {
        let tokens = try await ConnectTokens(secret: String(repeating: "k", count: 32))
        var seen = Set<String>()
        for _ in 0..<100 {
            let token = try await tokens.mint(for: "alice")
            seen.insert(try await tokens.verify(token).id)
        }
        #expect(seen.count == 100)
    }
}
