import Hummingbird

/// Checks the API key on every request, comparing in constant time. An empty key, configured
/// or presented, never matches.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard Self.admits(request.headers, key: key) else { throw APIError.unauthorized }
        return try await next(request, context)
    }
}

extension APIKeyMiddleware {
    /// Whether `headers` present `key`, as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    static func admits(_ headers: HTTPFields, key: [UInt8]) -> Bool {
        admits(
            authorization: headers[.authorization],
            apiKey: headers.first { $0.name.canonicalName == "x-api-key" }?.value, key: key)
    }

    /// Whether a request whose `Authorization` values (joined by `, `) are `authorization` and
    /// whose first `X-API-Key` is `apiKey` presents `key`: a `Bearer` authorization decides,
    /// else the `X-API-Key`. An empty key, configured or presented, never matches.
    static func admits(authorization: String?, apiKey: String?, key: [UInt8]) -> Bool {
        let presented =
            authorization.flatMap { value -> Substring? in
                value.hasPrefix("Bearer ") ? value.dropFirst("Bearer ".count) : nil
            } ?? apiKey.map { Substring($0) }
        guard let presented, !presented.isEmpty, !key.isEmpty else { return false }
        return constantTimeEqual(Array(presented.utf8), key)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
    let count = max(lhs.count, rhs.count)
    for index in 0..<count {
        let left = index < lhs.count ? lhs[index] : 0
        let right = index < rhs.count ? rhs[index] : 0
        difference |= left ^ right
    }
    return difference == 0
}
