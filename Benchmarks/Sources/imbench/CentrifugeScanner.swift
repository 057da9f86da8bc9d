/// Reads what a member needs from one line of Centrifuge's JSON protocol (v1, the library's
/// `protocol.Reply`), by walking its bytes without a JSON decoder.
///
/// The server writes each reply as one JSON object and a newline, several per WebSocket frame:
/// - a command's reply: `{"id":2,"result":{}}`, or `{"id":2,"error":{"code":103,"message":…}}`;
/// - a push (no `id`): `{"result":{"type":1,"channel":"bench","data":{…}}}`, where a publication
///   is type 0, which is left out: `{"result":{"channel":"bench","data":{"data":{"seq":0,"t":1}}}}`
///   (the publication may carry `seq`, `gen`, `uid` before its `data`, `info` and `offset` after).
///
/// Members are found whatever their order; the walk is bounded by the line, never recurses,
/// and gives up (`nil`) on bytes that are not such an object.
enum CentrifugeScanner {
    /// What a line is.
    enum Line: Equatable {
        /// The reply to command `id`; `failed` when it carries an `error`.
        case reply(id: UInt32, failed: Bool)
        /// A publication push: its data (the publisher's JSON) at these offsets of the line.
        case publication(data: Range<Int>)
        /// Any other push (join, leave, message, unsubscribe, subscribe), or no member of these.
        case other
    }

    private static let idKey = Array("id".utf8), errorKey = Array("error".utf8), resultKey = Array("result".utf8)
    private static let typeKey = Array("type".utf8), dataKey = Array("data".utf8)

    /// What `line` (without its newline) is, or `nil` when it is not a reply object.
    static func line(_ line: UnsafeRawBufferPointer) -> Line? {
        var id: Range<Int>?
        var error = false
        var result: Range<Int>?
        let end = walkObject(line, at: 0) { key, value in
            if line.keyIs(key, idKey) {
                id = value
            } else if line.keyIs(key, errorKey) {
                error = true
            } else if line.keyIs(key, resultKey) {
                result = value
            }
        }
        guard let end, line.skippingSpace(from: end) == line.count else { return nil }
        if let id {
            guard let number = unsigned(line, in: id), let id = UInt32(exactly: number) else { return nil }
            return .reply(id: id, failed: error)
        }
        if error { return .reply(id: 0, failed: true) }
        guard let result else { return .other }
        return push(line, at: result)
    }

    /// A push's kind: a publication (type 0, its data's `data`), or another.
    private static func push(_ line: UnsafeRawBufferPointer, at result: Range<Int>) -> Line? {
        var type: Range<Int>?
        var data: Range<Int>?
        let pushEnd = walkObject(line, at: result.lowerBound) { key, value in
            if line.keyIs(key, typeKey) {
                type = value
            } else if line.keyIs(key, dataKey) {
                data = value
            }
        }
        guard pushEnd != nil else { return nil }
        if let type {
            guard let kind = unsigned(line, in: type) else { return nil }
            guard kind == 0 else { return .other }
        }
        guard let data else { return nil }
        var payload: Range<Int>?
        let publicationEnd = walkObject(line, at: data.lowerBound) { key, value in
            if line.keyIs(key, dataKey) { payload = value }
        }
        guard publicationEnd != nil, let payload else { return nil }
        return .publication(data: payload)
    }

    /// Walks the object that starts at `start` (after spaces), calling `visit` with each member's
    /// key (inside its quotes, escapes unresolved) and value; returns the index after the
    /// object, or `nil` when the bytes there are not an object.
    private static func walkObject(
        _ bytes: UnsafeRawBufferPointer, at start: Int, visit: (_ key: Range<Int>, _ value: Range<Int>) -> Void
    ) -> Int? {
        var index = bytes.skippingSpace(from: start)
        guard bytes.byte(at: index) == UInt8(ascii: "{") else { return nil }
        index = bytes.skippingSpace(from: index + 1)
        if bytes.byte(at: index) == UInt8(ascii: "}") { return index + 1 }
        while true {
            guard bytes.byte(at: index) == UInt8(ascii: "\""), let keyEnd = skipString(bytes, at: index) else {
                return nil
            }
            let key = (index + 1)..<(keyEnd - 1)
            index = bytes.skippingSpace(from: keyEnd)
            guard bytes.byte(at: index) == UInt8(ascii: ":") else { return nil }
            let valueStart = bytes.skippingSpace(from: index + 1)
            guard let valueEnd = skipValue(bytes, at: valueStart) else { return nil }
            visit(key, valueStart..<valueEnd)
            index = bytes.skippingSpace(from: valueEnd)
            switch bytes.byte(at: index) {
            case UInt8(ascii: ","): index = bytes.skippingSpace(from: index + 1)
            case UInt8(ascii: "}"): return index + 1
            default: return nil
            }
        }
    }

    /// The index after the value at `start`: a string, an object or array (nesting counted in a
    /// loop, strings skipped), or a number or literal; `nil` when it does not end in `bytes`.
    private static func skipValue(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Int? {
        guard let first = bytes.byte(at: start) else { return nil }
        switch first {
        case UInt8(ascii: "\""):
            return skipString(bytes, at: start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard let end = skipString(bytes, at: index) else { return nil }
                    index = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default:
                    break
                }
                index += 1
            }
            return nil
        default:
            var index = start
            while let byte = bytes.byte(at: index), isScalarByte(byte) { index += 1 }
            return index > start ? index : nil
        }
    }

    /// The index after the string whose opening quote is at `start`, or `nil` when it is not
    /// closed in `bytes`.
    private static func skipString(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Int? {
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return nil
    }

    /// Whether `byte` can be part of a number or of `true`, `false`, `null`.
    private static func isScalarByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."):
            true
        default: false
        }
    }

    /// The unsigned integer that is exactly the bytes of `range` (at most 19 digits), or `nil`.
    private static func unsigned(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>) -> UInt64? {
        guard (1...19).contains(range.count) else { return nil }
        var value: UInt64 = 0
        for index in range {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + UInt64(digit)
        }
        return value
    }
}

extension UnsafeRawBufferPointer {
    /// The byte at `index`, or `nil` past the end.
    @inline(__always)
    fileprivate func byte(at index: Int) -> UInt8? {
        index >= 0 && index < count ? self[index] : nil
    }

    /// The first index at or after `index` that is not JSON white space (or `count`).
    @inline(__always)
    fileprivate func skippingSpace(from index: Int) -> Int {
        var index = index
        while let byte = byte(at: index),
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
                || byte == UInt8(ascii: "\n")
        {
            index += 1
        }
        return index
    }

    /// Whether the key at `range` is `name`.
    @inline(__always)
    fileprivate func keyIs(_ range: Range<Int>, _ name: [UInt8]) -> Bool {
        range.count == name.count && hasBytes(name, at: range.lowerBound)
    }
}
