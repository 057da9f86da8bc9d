import Foundation
import ImCore
public import NIOCore
import ImJSON

/// A message body: exactly one JSON value, checked when made, sent to clients as it is.
public struct JSONPayload: Sendable, Equatable {
    /// The JSON text as UTF-8 bytes.
    public let bytes: ByteBuffer

    /// The JSON encoding of `value`.
    public init(encoding value: some Encodable) throws(PayloadError) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            let data = try encoder.encode(value)
            self.bytes = ByteBuffer(bytes: data)
        } catch {
            throw .notEncodable(String(describing: error))
        }
    }

    /// JSON text, validated.
    public init(json: String) throws(PayloadError) {
        try self.init(validating: ByteBuffer(string: json))
    }

    /// JSON bytes, validated.
    public init(validating bytes: ByteBuffer) throws(PayloadError) {
        guard bytes.readableBytes > 0 else { throw .invalidJSON("empty body") }
        guard bytes.withUnsafeReadableBytes({ JSONValidator.isValid($0) }) else {
            throw .invalidJSON("not a single JSON value")
        }
        self.bytes = bytes
    }

    /// Bytes the caller has already read as exactly one JSON value (a member of a request body
    /// that ``JSONValidator`` stepped over); not checked again.
    package init(checked bytes: ByteBuffer) { self.bytes = bytes }

    /// A JSON string holding `text`.
    public static func text(_ text: String) -> JSONPayload {
        // Encoding a String cannot fail.
        (try? JSONPayload(encoding: text)) ?? JSONPayload(checked: ByteBuffer(string: "\"\""))
    }

    /// The JSON text.
    public var json: String { String(buffer: bytes) }
}

/// Why a value could not be a ``JSONPayload``.
public enum PayloadError: Error, Equatable, CustomStringConvertible {
    /// The bytes are not one JSON value.
    case invalidJSON(String)
    /// The value could not be encoded as JSON.
    case notEncodable(String)

    public var description: String {
        switch self {
        case .invalidJSON(let detail): "message data is not valid JSON: \(detail)"
        case .notEncodable(let detail): "message data could not be encoded as JSON: \(detail)"
        }
    }
}
