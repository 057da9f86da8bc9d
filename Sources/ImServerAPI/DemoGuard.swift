import ImServer
import NIOHTTP1

/// Keeps web pages of other sites from using the demo's endpoints: a `POST` must carry
/// `Content-Type: application/json` (415 otherwise; a page cannot send that cross-site without
/// a CORS preflight), and on a loopback-only demo the `Host` must be a loopback name (a page
/// that rebound its DNS name to 127.0.0.1 is refused, 403) and the `Origin`, if any, a
/// loopback page (403).
struct DemoGuard: Sendable {
    /// Whether `Host` and `Origin` must be loopback (the demo is not public).
    let loopbackOnly: Bool

    /// The refusal for `request`, or `nil` when it may be served.
    func refusal(for request: PublicRequest) -> PublicResponse? {
        if loopbackOnly {
            guard let host = request.headers.first(name: "host"), LoopbackNames.isLoopback(authority: host) else {
                return .error(
                    .forbidden,
                    "the demo answers only requests addressed to a loopback Host "
                        + "(localhost, 127.0.0.1, [::1])")
            }
            if let origin = request.headers.first(name: "origin"), !LoopbackNames.isLoopback(origin: origin) {
                return .error(.forbidden, "the demo refuses requests from web pages of other origins")
            }
        }
        if request.method == .POST {
            guard let type = request.headers.first(name: "content-type"), LoopbackNames.isJSON(contentType: type)
            else {
                return .error(.unsupportedMediaType, "the body must be JSON, sent with Content-Type: application/json")
            }
        }
        return nil
    }
}

extension PublicRoutes {
    /// Serves `method path` with `handler` behind `guard`.
    mutating func add(
        _ method: HTTPMethod, _ path: String, guardedBy demoGuard: DemoGuard,
        _ handler: @escaping Handler
    ) {
        add(method, path) { request in
            if let refusal = demoGuard.refusal(for: request) { return refusal }
            return await handler(request)
        }
    }
}
