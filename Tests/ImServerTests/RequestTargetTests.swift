@testable import ImServer
import Testing

@Suite("Request target parsing")
struct RequestTargetTests {
    @Test("path and token are split from the request target")
    func splits() {
        let target = RequestTarget("/ws?x=1&token=abc.def-ghi_jkl&token=second")
        #expect(target.path == "/ws")
        #expect(target.value(of: "token") == "abc.def-ghi_jkl")
        #expect(target.value(of: "x") == "1")
        #expect(target.value(of: "missing") == nil)
    }

    @Test("no query, empty values, a name that is only a prefix, and percent-encoding")
    func edges() {
        #expect(RequestTarget("/ws").path == "/ws")
        #expect(RequestTarget("/ws").value(of: "token") == nil)
        #expect(RequestTarget("/ws?token=").value(of: "token") == "")
        #expect(RequestTarget("/ws?tokens=1").value(of: "token") == nil)
        #expect(RequestTarget("/ws?token=a%2Eb").value(of: "token") == "a.b")
        #expect(RequestTarget("/ws/other?token=1").path == "/ws/other")
    }
}
