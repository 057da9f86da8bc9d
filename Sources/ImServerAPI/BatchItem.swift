import ImCore
import ImHelper
import ImJSON

/// One item of `POST /v1/batch`, read on the common path: its members found by comparing
/// their names' bytes, and only the values a message keeps decoded.
///
/// Reading every item into a ``RequestBody`` (each name and string decoded into a `String`,
/// the members gathered in an array, then looked up by name) was a third of a thousand-message
/// batch. This path takes an item only as it can read it whole: members named `from`, `to`,
/// `channel`, `broadcast`, `data` and `receipt`, each at most once, names and strings without
/// escapes, values of the right types, valid client ids. For anything else it answers `nil`,
/// and the item goes the general way (``RequestBody`` and ``OutgoingMessage/batchItem(_:)``),
/// which takes the same items to the same messages and names what is wrong with the others;
/// `BatchItemTests` checks that the two agree.
struct BatchItem {
    private var from: Range<Int>?
    private var to: Range<Int>?
    private var channel: Range<Int>?
    private var broadcast: Range<Int>?
    private var data: Range<Int>?
    private var receipt: Range<Int>?

    /// The message of the item that starts at `start` in `body` (an element of its
    /// `messages`), and where the item ends; `nil` when it must be read the general way.
    static func read(in body: RequestBody, at start: Int) -> (OutgoingMessage, end: Int)? {
        var item = BatchItem()
        let bytes = body.bytes
        let end = FlatJSONObject.forEachMember(ofValidatedObjectAt: start, in: bytes) { name, isPlain, value in
            isPlain && item.take(bytes[name], value)
        }
        guard let end, let message = item.message(in: body) else { return nil }
        return (message, end)
    }

    /// Keeps where the value of the member named `name` lies; `false` for a name this path
    /// does not read, or one seen before.
    private mutating func take(_ name: ArraySlice<UInt8>, _ value: Range<Int>) -> Bool {
        func named(_ word: StaticString) -> Bool {
            guard name.count == word.utf8CodeUnitCount else { return false }
            var letter = word.utf8Start
            for byte in name {
                guard byte == letter.pointee else { return false }
                letter += 1
            }
            return true
        }
        func keep(_ slot: inout Range<Int>?) -> Bool {
            guard slot == nil else { return false }
            slot = value
            return true
        }
        if named("from") { return keep(&from) }
        if named("data") { return keep(&data) }
        if named("channel") { return keep(&channel) }
        if named("to") { return keep(&to) }
        if named("broadcast") { return keep(&broadcast) }
        if named("receipt") { return keep(&receipt) }
        return false
    }

    /// The message, as ``OutgoingMessage/batchItem(_:)`` makes it; `nil` where that would
    /// throw, or where a value needs the general reader.
    private func message(in body: RequestBody) -> OutgoingMessage? {
        let bytes = body.bytes
        let hasTo = to.map { !Self.isNull($0, in: bytes) } ?? false
        let hasChannel = channel.map { !Self.isNull($0, in: bytes) } ?? false
        guard let isBroadcast = Self.bool(broadcast, in: bytes),
            (hasTo ? 1 : 0) + (hasChannel ? 1 : 0) + (isBroadcast ? 1 : 0) == 1, let data
        else { return nil }
        let payload = body.payload(at: data)
        if isBroadcast {
            guard let from, !Self.isNull(from, in: bytes) else { return .broadcast(payload) }
            guard let sender = Self.client(from, in: bytes) else { return nil }
            return .broadcast(payload, from: sender)
        }
        guard let from, let sender = Self.client(from, in: bytes) else { return nil }
        if hasChannel {
            guard let channel, let name = Self.plainString(channel, in: bytes) else { return nil }
            return OutgoingMessage(payload, from: sender, toChannel: name)
        }
        guard let to, let wantsReceipt = Self.bool(receipt, in: bytes),
            let elements = try? FlatJSONObject.elements(ofArrayIn: bytes, to), !elements.isEmpty
        else { return nil }
        var receivers: [ClientID] = []
        receivers.reserveCapacity(elements.count)
        for element in elements {
            guard let receiver = Self.client(element, in: bytes) else { return nil }
            receivers.append(receiver)
        }
        return OutgoingMessage(payload, from: sender, to: receivers, receipt: wantsReceipt)
    }

    private static func isNull(_ value: Range<Int>, in bytes: [UInt8]) -> Bool {
        bytes[value.lowerBound] == UInt8(ascii: "n")
    }

    /// An optional boolean member: `false` when absent or `null`, `nil` when not a boolean.
    private static func bool(_ value: Range<Int>?, in bytes: [UInt8]) -> Bool? {
        guard let value else { return false }
        switch bytes[value.lowerBound] {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"), UInt8(ascii: "n"): return false
        default: return nil
        }
    }

    /// The string `value` holds when it is one without escapes (checked UTF-8 already, so its
    /// bytes are its text); `nil` otherwise.
    private static func plainString(_ value: Range<Int>, in bytes: [UInt8]) -> String? {
        guard value.count >= 2, bytes[value.lowerBound] == UInt8(ascii: "\"") else { return nil }
        let text = bytes[(value.lowerBound + 1)..<(value.upperBound - 1)]
        guard !text.contains(UInt8(ascii: "\\")) else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    private static func client(_ value: Range<Int>, in bytes: [UInt8]) -> ClientID? {
        plainString(value, in: bytes).flatMap { try? ClientID(validating: $0) }
    }
}
