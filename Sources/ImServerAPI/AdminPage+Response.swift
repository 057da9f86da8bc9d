import Crypto
import Foundation
import Hummingbird
import NIOCore

extension AdminPage {
    /// What the page may do, and nothing more: run its own inline script and style (allowed by
    /// hash, so an injected one would not run), fetch from its own origin (the API), show the
    /// inline `data:` favicon. No framing (clickjacking), no base URL, no form posted anywhere.
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src \(hash(AdminPageScript.js))", "style-src \(hash(AdminPageStyle.css))",
        "connect-src 'self'", "img-src data:", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// The page, with its security headers. It is static and holds no data, so it is served
    /// without the API key (a browser's navigation cannot send one); every call its script
    /// makes is behind the key like any other client's.
    static func response() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: contentSecurityPolicy,
                .xContentTypeOptions: "nosniff", .cacheControl: "no-store",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// A CSP source for an inline element whose text is `text`: `'sha256-<base64>'`.
    static func hash(_ text: String) -> String {
        "'sha256-" + Data(SHA256.hash(data: Data(text.utf8))).base64EncodedString() + "'"
    }
}
