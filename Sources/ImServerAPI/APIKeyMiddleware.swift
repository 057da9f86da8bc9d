import Hummingbird

/// Checks the API key on every request, comparing in constant time. An empty key, configured
/// or presented, never matches.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let presented =
            request.headers[.authorization].flatMap { value -> Substring? in
                value.hasPrefix("Bearer ") ? value.dropFirst("Bearer ".count) : nil
            } ?? request.headers.first { $0.name.canonicalName == "x-api-key" }.map { Substring($0.value) }
        guard let presented, !presented.isEmpty, !key.isEmpty, constantTimeEqual(Array(presented.utf8), key) else {
            throw APIError.unauthorized
        }
        return try await next(request, context)
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
