import Hummingbird

/// Refuses a request that carries a body (a `Content-Type`, a non-zero `Content-Length` or a
/// `Transfer-Encoding`) unless it is `application/json`: 415 `unsupported_media_type`. A web
/// page on another site can send `text/plain` or form bodies without asking (no CORS
/// preflight), but never `application/json`.
struct JSONBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let headers = request.headers
        let hasBody =
            headers[.contentType] != nil || headers[.transferEncoding] != nil
            || (headers[.contentLength].map { $0 != "0" } ?? false)
        if hasBody {
            guard let type = headers[.contentType], LoopbackNames.isJSON(contentType: type) else {
                throw APIError.unsupportedMediaType
            }
        }
        return try await next(request, context)
    }
}

/// For an API without a key (so on loopback): refuses, 403 `forbidden`, a request whose `Host`
/// is not a loopback name (a page that rebound its DNS name to 127.0.0.1) or whose `Origin`
/// is not a loopback page (cross-site request forgery).
struct LoopbackOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let refusal = Self.refusal(authority: request.head.authority, origin: request.headers[.origin]) {
            throw refusal
        }
        return try await next(request, context)
    }

    /// Why a request with this `Host` (`authority`) and `Origin` is refused, or `nil` when both
    /// are loopback names (or there is no `Origin`).
    static func refusal(authority: String?, origin: String?) -> APIError? {
        guard let authority, LoopbackNames.isLoopback(authority: authority) else {
            return APIError.forbidden(
                "the API has no key, so it answers only requests addressed to a loopback "
                    + "Host (localhost, 127.0.0.1, [::1]); configure an API key to serve other names")
        }
        if let origin, !LoopbackNames.isLoopback(origin: origin) {
            return APIError.forbidden(
                "the API has no key, so it refuses requests from web pages of other origins "
                    + "(Origin: \(origin.prefix(100)))")
        }
        return nil
    }
}
