import NIOCore
import Testing

@testable import ImPostgres

/// How bus messages travel in `NOTIFY` payloads, and what a stranger's payload does.
@Suite("PostgreSQL notification codec")
struct NotificationCodecTests {
    @Test("text, binary and row payloads come back as they went; the subject is whole")
    func roundTrip() throws {
        let subject = "chan.ÿ spaces|and:colons"
        let text = try #require(
            NotificationCodec.inlinePayload(ByteBuffer(string: "héllo"), subject: subject, tag: "a.1"))
        #expect(NotificationCodec.decode(text)?.subject == subject)
        #expect(NotificationCodec.decode(text)?.body == .inline(ByteBuffer(string: "héllo")))
        let binary = ByteBuffer(bytes: [0, 1, 0xFF, 0])
        let encoded = try #require(NotificationCodec.inlinePayload(binary, subject: subject, tag: "a.2"))
        #expect(NotificationCodec.decode(encoded)?.body == .inline(binary))
        #expect(
            NotificationCodec.decode(NotificationCodec.rowPayload(42, subject: subject, tag: "a.3"))?.body == .row(42))
        #expect(
            NotificationCodec.inlinePayload(ByteBuffer(repeating: 65, count: 8_000), subject: subject, tag: "a.4")
                == nil,
            "too large to notify: it goes through the table")
    }

    @Test("a payload this codec did not write is ignored, whatever its numbers say")
    func strangersArePassedOver() {
        for payload in [
            "", "x", "tag|", "tag|t", "tag|t5", "tag|tx:abc", "tag|t-1:abc", "tag|t9:abc",
            "tag|t9223372036854775807:abc", "tag|r3:abcnot-a-number", "tag|b3:abc!!!", "tag|q3:abcdef",
        ] {
            #expect(NotificationCodec.decode(payload) == nil, "\(payload)")
        }
    }

    @Test("channel names are the schema, an underscore and 16 hex digits (an identifier under 63 bytes)")
    func channels() {
        let channel = NotificationCodec.channel(of: String(repeating: "long subject ", count: 50), schema: "im")
        #expect(channel.hasPrefix("im_") && channel.utf8.count == 19)
        #expect(channel != NotificationCodec.channel(of: "other", schema: "im"))
    }
}
