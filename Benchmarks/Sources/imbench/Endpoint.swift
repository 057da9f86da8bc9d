import Foundation

/// A host, port and request target parsed from a `ws://`, `wss://`, `http://` or `https://` URL.
///
/// Parsed by hand: URLs here are the benchmark's own or minted by the server, and a
/// connect URL's query (the token) must pass through byte for byte.
struct Endpoint: Sendable, Codable, Hashable, CustomStringConvertible {
    /// `ws`, `wss`, `http` or `https`.
    var scheme: String
    /// The host as written (an IPv4 address or a name).
    var host: String
    /// The port (default 80, or 443 with TLS).
    var port: Int
    /// The path with its query, e.g. `/ws?token=…`; `/` when the URL has none.
    var target: String

    /// The schemes the benchmark speaks: without and with TLS.
    static let schemes: Set<String> = ["ws", "http", "wss", "https"]

    /// Parses `text`; `ws://`, `wss://`, `http://` and `https://` are supported.
    init(parsing text: String) throws(BenchError) {
        // On the UTF-8 view: a connect URL is parsed per connection, and its token is long.
        let bytes = text.utf8
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")),
            bytes[colon...].starts(with: "://".utf8)
        else {
            throw .invalidArgument("'\(text)' is not a URL (expected ws[s]://host:port/path or http[s]://host:port)")
        }
        scheme = String(Substring(bytes[..<colon])).lowercased()
        guard Self.schemes.contains(scheme) else {
            throw .invalidArgument("'\(text)': only ws://, wss://, http:// and https:// are supported")
        }
        let defaultPort = scheme == "wss" || scheme == "https" ? 443 : 80
        let rest = bytes[bytes.index(colon, offsetBy: 3)...]
        let authorityEnd =
            rest.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) ?? rest.endIndex
        let authority = Substring(rest[..<authorityEnd])
        target = authorityEnd == rest.endIndex ? "/" : String(Substring(rest[authorityEnd...]))
        if target.hasPrefix("?") { target = "/" + target }
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? -1 : defaultPort
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            port = Int(authority[authority.index(after: colon)...]) ?? -1
        } else {
            host = String(authority)
            port = defaultPort
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw .invalidArgument("'\(text)': bad host or port") }
    }

    /// Whether the endpoint is reached over TLS (`wss://`, `https://`).
    var isSecure: Bool { scheme == "wss" || scheme == "https" }

    /// The path without the query.
    var path: String { String(Substring(target.utf8.prefix { $0 != UInt8(ascii: "?") })) }

    /// The query without `?`, or an empty string.
    var query: String {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return "" }
        return String(Substring(target.utf8[target.utf8.index(after: mark)...]))
    }

    /// `host:port` as a `Host` header says it.
    var hostHeader: String { host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// This endpoint's host, port and path with the query of `other` (a minted URL's token).
    func withQuery(of other: Endpoint) -> Endpoint {
        var copy = self
        copy.target = other.query.isEmpty ? path : path + "?" + other.query
        return copy
    }

    var description: String { "\(scheme)://\(hostHeader)\(target)" }
}
