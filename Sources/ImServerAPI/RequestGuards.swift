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
        guard let authority = request.head.authority,
            LoopbackNames.isLoopback(authority: authority)
        else {
            throw APIError.forbidden(
                "the API has no key, so it answers only requests addressed to a loopback "
                    + "Host (localhost, 127.0.0.1, [::1]); configure an API key to serve other names")
        }
        if let origin = request.headers[.origin], !LoopbackNames.isLoopback(origin: origin) {
            throw APIError.forbidden(
                "the API has no key, so it refuses requests from web pages of other origins "
                    + "(Origin: \(origin.prefix(100)))")
        }
        return try await next(request, context)
    }
}
