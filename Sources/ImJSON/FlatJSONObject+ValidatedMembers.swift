extension FlatJSONObject {
    /// Visits the members of the object starting at `start` in bytes an earlier read checked
    /// (an element an ``ElementCursor`` found, say), in order, decoding nothing: `visit` gets
    /// where the member's name lies (between its quotes, as sent), whether the name has no
    /// escapes (so its bytes are its text), and where its value lies. Returns where the object
    /// ends, or `nil` when `visit` answers `false` or no object starts at `start` (a reader then
    /// takes the checked path of ``fields(of:in:validated:)``, which says what is wrong).
    ///
    /// A batch of a thousand messages read each item's members into ``Members``, decoding every
    /// name and string into a `String`: a fifth of the request. A caller that knows the names it
    /// wants compares their bytes instead, and decodes only the values it keeps.
    package static func forEachMember(
        ofValidatedObjectAt start: Int, in bytes: [UInt8],
        _ visit: (_ name: Range<Int>, _ nameIsPlain: Bool, _ value: Range<Int>) -> Bool
    ) -> Int? {
        bytes.withUnsafeBufferPointer { buffer -> Int? in
            // Every read below is at an index checked against `end`, the buffer's size.
            let end = buffer.count
            var index = max(start, 0)
            func skipWhitespace(_ index: inout Int) {
                while index < end, isWhitespace(buffer[index]) { index += 1 }
            }
            guard index < end, buffer[index] == UInt8(ascii: "{") else { return nil }
            index += 1
            skipWhitespace(&index)
            if index < end, buffer[index] == UInt8(ascii: "}") { return index + 1 }
            while true {
                skipWhitespace(&index)
                guard index < end, buffer[index] == UInt8(ascii: "\"") else { return nil }
                index += 1
                let nameStart = index
                var plain = true
                while index < end, buffer[index] != UInt8(ascii: "\"") {
                    if buffer[index] == UInt8(ascii: "\\") {
                        plain = false
                        index += 2
                    } else {
                        index += 1
                    }
                }
                guard index < end else { return nil }
                let name = nameStart..<index
                index += 1
                skipWhitespace(&index)
                guard index < end, buffer[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                skipWhitespace(&index)
                guard let valueEnd = JSONValidator.end(ofValidatedValueAt: index, in: UnsafeRawBufferPointer(buffer)),
                    valueEnd > index, valueEnd <= end, visit(name, plain, index..<valueEnd)
                else { return nil }
                index = valueEnd
                skipWhitespace(&index)
                guard index < end else { return nil }
                switch buffer[index] {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"): return index + 1
                default: return nil
                }
            }
        }
    }
}
