/// The identity of an end user, as the business back-end names it (FreeIM's `clientId`).
///
/// Any non-empty string of at most ``ClientID/maximumLength`` UTF-8 bytes. Negative numbers,
/// UUIDs and e-mail addresses are all fine: routing never does arithmetic on it.
public struct ClientID: RawRepresentable, Hashable, Comparable, Sendable, Codable,
    ExpressibleByStringLiteral, CustomStringConvertible
{
    /// The longest client id accepted, in UTF-8 bytes.
    public static let maximumLength = 256

    /// The id as the back-end spelled it.
    public let rawValue: String

    /// Wraps a raw id without validating it; use ``init(validating:)`` for input.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Wraps a literal id.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Validates an id taken from outside (a token, a request).
    public init(validating raw: String) throws(IdentifierError) {
        guard !raw.isEmpty else { throw .empty(kind: "client id") }
        guard raw.utf8.count <= Self.maximumLength else {
            throw .tooLong(kind: "client id", limit: Self.maximumLength)
        }
        self.rawValue = raw
    }

    public var description: String { rawValue }
    public static func < (lhs: ClientID, rhs: ClientID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The identity of one ImServer node in a cluster; also names its bus subject.
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, Codable,
    ExpressibleByStringLiteral, CustomStringConvertible
{
    /// The node id as configured.
    public let rawValue: String

    /// Wraps a node id.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Wraps a literal node id.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// A random node id, for nodes started without one.
    public static func random() -> NodeID {
        NodeID(rawValue: "node-" + randomHex(bytes: 6))
    }

    public var description: String { rawValue }
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One WebSocket connection, unique within the cluster for the life of the backplane.
///
/// Made of the node's incarnation (random per process start) and a counter, so a node that
/// restarts under the same ``NodeID`` never reuses an id of its previous life.
public struct ConnectionID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The id's text form, `<incarnation>-<counter>`.
    public let rawValue: String

    /// Wraps an id's text form.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// An id from a node incarnation and a counter.
    public init(incarnation: String, number: UInt64) {
        self.rawValue = incarnation + "-" + String(number, radix: 36)
    }

    public var description: String { rawValue }
}

/// One live connection as ``Presence`` stores it.
public struct ConnectionRecord: Hashable, Sendable, Codable {
    /// Whose connection it is.
    public var client: ClientID
    /// The node holding the socket.
    public var node: NodeID
    /// The connection's cluster-unique id.
    public var connection: ConnectionID
    /// The `meta` claim of the token the client connected with, handed to online/offline events.
    public var meta: String?

    /// Describes one connection.
    public init(client: ClientID, node: NodeID, connection: ConnectionID, meta: String? = nil) {
        self.client = client
        self.node = node
        self.connection = connection
        self.meta = meta
    }
}

/// Why an identifier from outside was refused.
public enum IdentifierError: Error, Equatable, CustomStringConvertible {
    /// The identifier was empty.
    case empty(kind: String)
    /// The identifier was longer than allowed.
    case tooLong(kind: String, limit: Int)

    public var description: String {
        switch self {
        case .empty(let kind): "\(kind) must not be empty"
        case .tooLong(let kind, let limit): "\(kind) is longer than \(limit) bytes"
        }
    }
}

/// A hex string of `bytes` random bytes (from the system's secure generator).
package func randomHex(bytes: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    var word: UInt64 = 0
    return String(unsafeUninitializedCapacity: bytes * 2) { out in
        for index in 0..<bytes {
            if index % 8 == 0 { word = generator.next() }
            let byte = UInt8(truncatingIfNeeded: word)
            word >>= 8
            out[2 * index] = hexDigits[Int(byte >> 4)]
            out[2 * index + 1] = hexDigits[Int(byte & 0xF)]
        }
        return bytes * 2
    }
}

/// The sixteen hex digits, lower case, as UTF-8 bytes.
package let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
