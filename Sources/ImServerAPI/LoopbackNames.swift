/// Reads `Host` and `Origin` header values for the checks that keep a web page from driving a
/// loopback listener: a page on another site (cross-site request forgery) sends an `Origin` of
/// its own, and a page that rebinds its DNS name to 127.0.0.1 sends its own name as `Host`.
enum LoopbackNames {
    /// Whether `host` (without port or brackets) names this machine: `localhost`,
    /// `*.localhost`, `127.x.x.x` or `::1`.
    static func isLoopback(host: Substring) -> Bool {
        // What clients on this machine send nearly always, checked without copying.
        if host == "127.0.0.1" || host == "localhost" { return true }
        let name = host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// The host of a `Host` header value (`name`, `name:port`, `[v6]`, `[v6]:port`), or `nil`
    /// when it is not one of those shapes.
    static func host(ofAuthority authority: Substring) -> Substring? {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            let rest = authority[authority.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && UInt16(rest.dropFirst()) != nil) else { return nil }
            return authority[authority.index(after: authority.startIndex)..<close]
        }
        guard let colon = authority.firstIndex(of: ":") else { return authority.isEmpty ? nil : authority }
        guard UInt16(authority[authority.index(after: colon)...]) != nil else { return nil }
        return authority[..<colon]
    }

    /// Whether a `Host` header value names this machine.
    static func isLoopback(authority: String) -> Bool {
        host(ofAuthority: authority[...]).map(isLoopback(host:)) ?? false
    }

    /// The `host[:port]` of an `Origin` header value (`scheme://host[:port]`), or `nil` (`null`,
    /// or not that shape).
    static func authority(ofOrigin origin: String) -> Substring? {
        guard let separator = origin.range(of: "://") else { return nil }
        let authority = origin[separator.upperBound...]
        guard !authority.isEmpty, !authority.contains("/") else { return nil }
        return authority
    }

    /// Whether an `Origin` header value is a page served by this machine.
    static func isLoopback(origin: String) -> Bool {
        authority(ofOrigin: origin).flatMap { host(ofAuthority: $0) }.map(isLoopback(host:)) ?? false
    }

    /// Whether a media type (a `Content-Type` value) is `application/json`, parameters allowed.
    static func isJSON(contentType: String) -> Bool {
        if contentType == "application/json" { return true }  // the usual value, without copying
        let type = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return type.filter { $0 != " " && $0 != "\t" }.lowercased() == "application/json"
    }
}
