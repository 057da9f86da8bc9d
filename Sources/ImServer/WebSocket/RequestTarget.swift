import Foundation

/// The path and query of a request line's target, split without Foundation (it runs for every
/// handshake).
struct RequestTarget {
    /// The path, up to `?`.
    let path: Substring
    private let query: Substring

    init(_ uri: String) {
        if let mark = uri.firstIndex(of: "?") {
            path = uri[..<mark]
            query = uri[uri.index(after: mark)...]
        } else {
            path = uri[...]
            query = ""
        }
    }

    /// The value of the first `name=value` pair named `name`, percent-decoded.
    func value(of name: String) -> String? {
        // On the UTF-8 view: splitting the query into Strings was 4 % of a handshake.
        let bytes = query.utf8
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
            let pair = bytes[start..<end]
            if let equals = pair.firstIndex(of: UInt8(ascii: "=")), pair[..<equals].elementsEqual(name.utf8) {
                let raw = pair[bytes.index(after: equals)...]
                let text = String(Substring(raw))
                let needsDecoding = raw.contains(UInt8(ascii: "%")) || raw.contains(UInt8(ascii: "+"))
                return needsDecoding ? text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding : text
            }
            start = end == bytes.endIndex ? end : bytes.index(after: end)
        }
        return nil
    }
}
