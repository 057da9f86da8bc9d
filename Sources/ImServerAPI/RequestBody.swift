import Hummingbird
import ImCore
import ImHelper
import NIOCore
import ImJSON

/// A JSON object from a request body, read with ``FlatJSONObject`` instead of `JSONDecoder`.
///
/// The send endpoints are the API's hot path: decoding their bodies into `Codable` values and
/// encoding the message body again took a quarter of a request's CPU. This reads the members
/// in one pass and hands the message body on as the bytes the back-end sent. Each accessor
/// throws a 400 ``APIError`` naming the field.
struct RequestBody {
    /// The body's bytes, read by the members' accessors.
    let bytes: [UInt8]
    /// The same bytes as received, which message bodies are slices of (not copies).
    private let buffer: ByteBuffer
    /// The object's members; ``field(_:)`` reads them.
    let fields: FlatJSONObject.Members
    /// The array member and index this object is an element of (an item of a batch), if any.
    private let element: (array: String, index: Int)?

    /// The object that `buffer` holds.
    init(_ buffer: ByteBuffer) throws(APIError) {
        try self.init(bytes: Array(buffer.readableBytesView), buffer: buffer, range: nil, element: nil)
    }

    /// The object that `range` of `body` holds (an element of a member `body` read, so checked
    /// already), named in errors as the item at `index` of the array member `array`.
    init(itemOf body: RequestBody, range: Range<Int>, element: (array: String, index: Int)) throws(APIError) {
        try self.init(bytes: body.bytes, buffer: body.buffer, range: range, element: element)
    }

    private init(bytes: [UInt8], buffer: ByteBuffer, range: Range<Int>?, element: (array: String, index: Int)?)
        throws(APIError)
    {
        self.bytes = bytes
        self.buffer = buffer
        self.element = element
        do {
            fields = try FlatJSONObject.fields(of: bytes, in: range, validated: range != nil)
        } catch {
            throw .invalidRequest("\(Self.path(of: element) ?? "request body") is not a JSON object: \(error.detail)")
        }
    }

    /// How a field is named in errors: `field 'to'`, or `messages[3].to` inside a batch. Made
    /// only for an error, not for every item of a batch.
    var path: String { Self.path(of: element) ?? "" }

    private static func path(of element: (array: String, index: Int)?) -> String? {
        element.map { "\($0.array)[\($0.index)]" }
    }

    /// The body of `request`, read up to `limit` bytes (beyond: 413 `too_large`).
    static func read(_ request: Request, limit: Int) async throws -> RequestBody {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge("request body is larger than \(limit) bytes")
        }
        return try RequestBody(buffer)
    }

    /// How errors name `name`.
    func describe(_ name: String) -> String {
        path.isEmpty ? "field '\(name)'" : "\(path).\(name)"
    }

    /// Whether the object has a member `name` that is not `null`.
    func has(_ name: String) -> Bool {
        guard let member = fields[name] else { return false }
        return member.value != .null
    }

    /// A string member; `nil` when absent or `null`.
    func string(_ name: String) throws(APIError) -> String? {
        guard let member = fields[name] else { return nil }
        switch member.value {
        case .string(let text): return text
        case .null: return nil
        default: throw .invalidRequest("\(describe(name)) must be a string")
        }
    }

    /// A string member that must be there.
    func requiredString(_ name: String) throws(APIError) -> String {
        guard let text = try string(name) else { throw .invalidRequest("missing field '\(name)'" + context) }
        return text
    }

    /// A boolean member; `nil` when absent or `null`.
    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let member = fields[name], member.value != .null else { return nil }
        switch bytes[member.range.lowerBound] {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        default: throw .invalidRequest("\(describe(name)) must be true or false")
        }
    }

    /// An array of strings that must be there.
    func strings(_ name: String) throws(APIError) -> [String] {
        guard let member = fields[name], member.value != .null else {
            throw .invalidRequest("missing field '\(name)'" + context)
        }
        let invalid = APIError.invalidRequest("\(describe(name)) must be an array of strings")
        guard let elements = try? FlatJSONObject.elements(ofArrayIn: bytes, member.range) else { throw invalid }
        var strings: [String] = []
        strings.reserveCapacity(elements.count)
        for range in elements {
            guard let text = try? FlatJSONObject.string(in: bytes, range) else { throw invalid }
            strings.append(text)
        }
        return strings
    }

    /// Where each element of an array member that must be there lies.
    func elements(_ name: String) throws(APIError) -> [Range<Int>] {
        guard let member = fields[name], member.value != .null,
            let elements = try? FlatJSONObject.elements(ofArrayIn: bytes, member.range)
        else { throw .invalidRequest("missing field '\(name)' (an array)" + context) }
        return elements
    }

    /// A cursor over the elements of an array member that must be there.
    func elementCursor(_ name: String) throws(APIError) -> FlatJSONObject.ElementCursor {
        guard let member = fields[name], member.value != .null,
            let cursor = FlatJSONObject.ElementCursor(arrayIn: bytes, member.range)
        else { throw .invalidRequest("missing field '\(name)' (an array)" + context) }
        return cursor
    }

    /// A member that must be there, any JSON value, as a message body: the bytes as sent.
    func payload(_ name: String) throws(APIError) -> JSONPayload {
        guard let member = fields[name] else { throw .invalidRequest("missing field '\(name)'" + context) }
        return payload(at: member.range)
    }

    /// The JSON value that `range` of ``bytes`` holds (checked already), as a message body.
    func payload(at range: Range<Int>) -> JSONPayload {
        // A slice shares the body's storage: a batch's thousand bodies cost no copy each (and
        // keep the request's bytes alive until the last of them is published).
        let slice = buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)
        return JSONPayload(checked: slice ?? ByteBuffer(bytes: bytes[range]))
    }

    private var context: String { path.isEmpty ? "" : " in \(path)" }
}
