import Foundation
public import NIOCore

/// A client-to-server frame of wire protocol v1.
public enum ClientFrame: Equatable, Sendable {
    /// `{"type":"ping"}`: answered with `{"type":"pong"}`.
    case ping
    /// `{"type":"ack","id":"…"}`: the client acknowledges a message; the sender gets `acked`.
    case ack(messageID: String)

    private struct Wire: Decodable {
        var type: String
        var id: String?
    }

    /// Parses a text frame's payload, or throws ``ClientFrameError``.
    public init(parsing payload: ByteBuffer) throws(ClientFrameError) {
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(payload.readableBytesView))
        } catch {
            throw .malformedJSON
        }
        switch wire.type {
        case "ping":
            self = .ping
        case "ack":
            guard let id = wire.id, !id.isEmpty, id.utf8.count <= 128 else { throw .missingField("id") }
            self = .ack(messageID: id)
        default:
            throw .unknownType(String(wire.type.prefix(32)))
        }
    }
}

/// Why a client frame was refused; the node closes the connection with 1007 (invalid frame
/// payload data).
public enum ClientFrameError: Error, Equatable, CustomStringConvertible {
    /// Not a JSON object with a string `type`.
    case malformedJSON
    /// A `type` this protocol version does not define.
    case unknownType(String)
    /// A required field is missing or invalid.
    case missingField(String)

    public var description: String {
        switch self {
        case .malformedJSON: "frame is not a JSON object with a string \"type\""
        case .unknownType(let type): "unknown frame type \"\(type)\""
        case .missingField(let field): "frame lacks a valid \"\(field)\""
        }
    }
}
