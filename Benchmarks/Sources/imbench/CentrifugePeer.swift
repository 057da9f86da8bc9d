import Foundation
import NIOCore

/// A Centrifuge node as the peer the benchmark compares ImServer with (`--peer
/// centrifuge://host:port`): the peer program of Benchmarks/Peers/centrifuge, Centrifugo's
/// engine (the centrifuge Go library). Members connect to its WebSocket listener (`--url
/// ws://host:port/connection/websocket`) and speak its JSON protocol there
/// (``MemberHandler/receivedCentrifuge(_:endsMessage:readyID:context:)``); messages are
/// published through its server API, `POST /api`, shaped like Centrifugo's
/// (``APIRequest/centrifugePublish(channel:)``), as ImServer gets them through its own.
struct CentrifugePeer: Sendable, Equatable {
    /// Where the server API is (`http://host:port`; requests go to `/api`).
    var api: Endpoint

    /// Parses `centrifuge://host:port` (port 8000 by default, Centrifugo's).
    init(parsing text: String) throws(BenchError) {
        let usage = BenchError.invalidArgument("'\(text)': --peer takes a centrifuge://host:port URL (the peer's API)")
        guard let components = URLComponents(string: text), components.scheme == "centrifuge",
            var host = components.host, !host.isEmpty, components.path.isEmpty || components.path == "/",
            components.query == nil
        else { throw usage }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let authority = host.contains(":") ? "[\(host)]" : host
        api = try Endpoint(parsing: "http://\(authority):\(components.port ?? 8000)")
    }

    /// The server API of the peer, as the pacer's sender reaches it.
    var serverAPI: ServerAPI { ServerAPI(nodes: [api], apiKey: nil) }

    /// `text` as a JSON string literal, quotes included.
    static func quoted(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}

extension APIRequest {
    /// Centrifugo's server API `publish` of the benchmark's body to `channel`:
    /// `{"method":"publish","params":{"channel":…,"data":{"seq":n,"t":ns}}}`.
    static func centrifugePublish(channel: String) -> APIRequest {
        let quoted = CentrifugePeer.quoted(channel)
        return centrifugePublish { _, body in body.writeString(quoted) }
    }

    /// Centrifugo's server API `publish` of the benchmark's body to the channel that
    /// `writeChannel` writes for message `seq` (as a JSON string). The peer answers
    /// `{"result":{}}`; a command that failed is answered with an `error` (HTTP 200, as
    /// Centrifugo does), so the body is checked too.
    static func centrifugePublish(
        writingChannel writeChannel: @escaping @Sendable (_ seq: Int, _ body: inout ByteBuffer) -> Void
    ) -> APIRequest {
        let accepted = Array(#"{"result""#.utf8)
        return APIRequest(
            target: "/api",
            writeBody: { seq, time, body in
                body.writeStaticString(#"{"method":"publish","params":{"channel":"#)
                writeChannel(seq, &body)
                body.writeStaticString(#","data":"#)
                SendPlan.writeData(seq: seq, time: time, into: &body)
                body.writeStaticString("}}")
            },
            check: { reply in
                guard reply.isSuccess, reply.body.readableBytesView.starts(with: accepted) else {
                    throw BenchError.server("HTTP \(reply.status): \(reply.text.prefix(100))")
                }
            })
    }
}
