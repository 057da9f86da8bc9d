import NIOCore

/// How a paced message goes out as an HTTP request (``APISender``): where it goes, its JSON
/// body, and whether the reply means the server took it.
struct APIRequest: Sendable {
    /// The request target, the same for every message.
    var target: String
    /// Writes the body of message `seq`, sent at `time`.
    var writeBody: @Sendable (_ seq: Int, _ time: UInt64, _ body: inout ByteBuffer) -> Void
    /// Throws when the reply says the message was not taken.
    var check: @Sendable (HTTPReply) throws -> Void

    /// ImServer's server API: a channel message (`POST /v1/channels/<channel>/messages`, from
    /// `bench`) or a direct message from `s<i>` to `r<i>` (`POST /v1/messages`); any 2xx takes it.
    static func imserver(_ plan: SendPlan) -> APIRequest {
        let target: String
        let writeBody: @Sendable (Int, UInt64, inout ByteBuffer) -> Void
        switch plan {
        case .channel(let channel):
            target = "/v1/channels/\(channel)/messages"
            writeBody = { seq, time, body in
                body.writeStaticString(#"{"from":"bench","data":"#)
                SendPlan.writeData(seq: seq, time: time, into: &body)
                body.writeStaticString("}")
            }
        case .pairs(let pairs):
            target = "/v1/messages"
            writeBody = { seq, time, body in
                let pair = String(seq % pairs)
                body.writeStaticString(#"{"from":"s"#)
                body.writeString(pair)
                body.writeStaticString(#"","to":["r"#)
                body.writeString(pair)
                body.writeStaticString(#""],"data":"#)
                SendPlan.writeData(seq: seq, time: time, into: &body)
                body.writeStaticString("}")
            }
        }
        return APIRequest(target: target, writeBody: writeBody) { reply in
            guard reply.isSuccess else { throw BenchError.server("HTTP \(reply.status): \(reply.text.prefix(100))") }
        }
    }
}
