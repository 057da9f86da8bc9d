import Testing

@testable import imbench

/// The benchmark's URL parsing (run once per connection on minted connect URLs).
@Suite struct EndpointTests {
    @Test func partsOfAConnectURL() throws {
        let endpoint = try Endpoint(parsing: "ws://127.0.0.1:6501/ws?token=a.b-c_d")
        #expect(endpoint.scheme == "ws" && endpoint.host == "127.0.0.1" && endpoint.port == 6501)
        #expect(endpoint.target == "/ws?token=a.b-c_d")
        #expect(endpoint.path == "/ws" && endpoint.query == "token=a.b-c_d")
        #expect(endpoint.hostHeader == "127.0.0.1:6501")
    }

    @Test func defaultsAndIPv6() throws {
        let plain = try Endpoint(parsing: "HTTP://example.test")
        #expect(plain.scheme == "http" && plain.port == 80 && plain.target == "/" && plain.query == "")
        let queryOnly = try Endpoint(parsing: "ws://h:1?token=x")
        #expect(queryOnly.target == "/?token=x" && queryOnly.path == "/")
        let six = try Endpoint(parsing: "ws://[::1]:7000/ws")
        #expect(six.host == "::1" && six.port == 7000 && six.hostHeader == "[::1]:7000")
    }

    @Test func anotherEndpointsQuery() throws {
        let base = try Endpoint(parsing: "ws://127.0.0.1:1/ws")
        let minted = try Endpoint(parsing: "ws://10.0.0.9:9/other?token=t")
        #expect(base.withQuery(of: minted).description == "ws://127.0.0.1:1/ws?token=t")
    }

    @Test func secureSchemes() throws {
        let minted = try Endpoint(parsing: "wss://127.0.0.1:17443/ws?token=t")
        #expect(minted.scheme == "wss" && minted.isSecure && minted.port == 17443 && minted.target == "/ws?token=t")
        let defaulted = try Endpoint(parsing: "WSS://chat.example.test/ws")
        #expect(defaulted.scheme == "wss" && defaulted.port == 443 && defaulted.hostHeader == "chat.example.test:443")
        let six = try Endpoint(parsing: "https://[::1]")
        #expect(six.isSecure && six.host == "::1" && six.port == 443)
        #expect(try !Endpoint(parsing: "ws://h:1/ws").isSecure && !Endpoint(parsing: "http://h").isSecure)
    }

    @Test(arguments: [
        "127.0.0.1:1/ws", "ws://:1/ws", "ws://h:0/ws", "ws://h:70000", "ws://h:x/ws", "ws:/h", "wss://h:0/ws",
    ])
    func refused(_ text: String) {
        #expect(throws: BenchError.self) { try Endpoint(parsing: text) }
    }

    @Test(arguments: ["ftp://h:1/ws", "tls://127.0.0.1:4222", "wsss://h:1/ws"])
    func unsupportedSchemeSaysWhichAre(_ text: String) {
        let error = #expect(throws: BenchError.self) { try Endpoint(parsing: text) }
        #expect(error?.description.contains("only ws://, wss://, http:// and https:// are supported") == true)
    }
}
