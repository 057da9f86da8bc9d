import Crypto
import Foundation
import NIOHTTP1

/// The WebSocket opening handshake's HTTP side (RFC 6455 §4.2): what a request must carry and
/// the `101` that accepts it.
enum WebSocketRequest {
    /// The GUID RFC 6455 appends to the client's key before hashing it.
    private static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Why `head` is not a well-formed WebSocket upgrade request, as the answer to send (a status
    /// and a one-line reason); `nil` when it is one.
    static func problem(in head: HTTPRequestHead) -> PublicResponse? {
        guard head.method == .GET else {
            return .error(.methodNotAllowed, "a WebSocket upgrade must be a GET request")
        }
        guard head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1) else {
            return .error(.badRequest, "a WebSocket upgrade needs HTTP/1.1")
        }
        guard head.headers["host"].count == 1 else {
            return .error(.badRequest, "a WebSocket upgrade needs one Host header")
        }
        guard head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
            return .error(.badRequest, "a WebSocket upgrade needs Connection: Upgrade")
        }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1, let key = keys.first, isWellFormedKey(key) else {
            return .error(.badRequest, "a WebSocket upgrade needs one Sec-WebSocket-Key: 16 bytes in base64")
        }
        guard head.headers["sec-websocket-version"] == ["13"] else {
            var refusal = PublicResponse.error(.upgradeRequired, "Sec-WebSocket-Version must be 13")
            refusal.headers.add(name: "sec-websocket-version", value: "13")  // RFC 6455 §4.4: the versions spoken
            return refusal
        }
        return nil
    }

    /// Whether `key` is 16 bytes in base64 (RFC 6455 §4.1): 22 characters of the base64
    /// alphabet and `==`.
    static func isWellFormedKey(_ key: String) -> Bool {
        let bytes = key.utf8
        guard bytes.count == 24, bytes.dropFirst(22).allSatisfy({ $0 == UInt8(ascii: "=") }) else { return false }
        return bytes.prefix(22).allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                true
            default:
                false
            }
        }
    }

    /// The subprotocol of the compact encoding (docs/protocol.md §9).
    static let compactProtocol = "imserver.v1.msgpack"

    /// Whether `request` offers the compact encoding among its `Sec-WebSocket-Protocol`s (any
    /// other subprotocol is ignored: the node speaks JSON then, as without the header).
    static func asksForCompactFrames(_ request: HTTPRequestHead) -> Bool {
        request.headers[canonicalForm: "sec-websocket-protocol"].contains { $0 == compactProtocol }
    }

    /// The `101 Switching Protocols` head that accepts `request` (checked by ``problem(in:)``),
    /// naming the compact encoding's subprotocol when `compact`.
    static func switchingProtocols(_ request: HTTPRequestHead, compact: Bool = false) -> HTTPResponseHead {
        let key = request.headers.first(name: "sec-websocket-key") ?? ""
        let digest = Insecure.SHA1.hash(data: Array((key + acceptGUID).utf8))
        var headers = HTTPHeaders([
            ("upgrade", "websocket"), ("connection", "upgrade"),
            ("sec-websocket-accept", Data(digest).base64EncodedString()),
        ])
        if compact { headers.add(name: "sec-websocket-protocol", value: compactProtocol) }
        return HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
    }
}
