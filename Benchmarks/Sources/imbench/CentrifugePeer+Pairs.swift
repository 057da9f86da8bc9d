import NIOCore

/// `imbench p2p` against a Centrifuge peer: receiver `r<i>` connects as user `r<i>` (the peer's
/// `user` query parameter) and subscribes to its personal channel `#r<i>`, a user-limited
/// channel in Centrifugo's convention, which the peer lets only `r<i>` read. The pacer publishes
/// message `n` to `#r<n % pairs>` through `POST /api`, as an outside back-end sends to a user,
/// with the body ImServer's direct messages carry.
extension CentrifugePeer {
    /// The channel only `user` may read: `#` and the user, Centrifugo's user boundary.
    static func personalChannel(of user: String) -> String { "#" + user }

    /// `websocket` with `user=<user>` added to its query: the peer connects it as that user.
    static func endpoint(_ websocket: Endpoint, user: String) -> Endpoint {
        var endpoint = websocket
        let target = websocket.target
        let separator = !target.contains("?") ? "?" : target.hasSuffix("?") || target.hasSuffix("&") ? "" : "&"
        endpoint.target = target + separator + "user=" + percentEncoded(user)
        return endpoint
    }

    /// `text` with every byte but RFC 3986's unreserved ones percent-encoded, for a query value.
    static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension APIRequest {
    /// The `publish` of message `n` to receiver `r<n % pairs>`'s personal channel (`#r<i>`,
    /// ``CentrifugePeer/personalChannel(of:)``): the p2p plan's direct message, as a back-end
    /// sends it through Centrifugo's server API. Checked as ``centrifugePublish(channel:)`` is.
    static func centrifugePublish(pairs: Int) -> APIRequest {
        let pairs = max(pairs, 1)
        return centrifugePublish { seq, body in
            body.writeStaticString("\"#r")
            body.writeString(String(seq % pairs))
            body.writeStaticString("\"")
        }
    }
}
