import Foundation
public import Hummingbird
import Logging
import ImCore
import ImHelper
import NIOCore

/// An error of the server API, answered as `{"error":{"code":…,"message":…}}`.
public struct APIError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A stable machine-readable code, such as `invalid_request`.
    public var code: String
    /// A one-line explanation for people.
    public var message: String

    /// An error with a status, code and message.
    public init(_ status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// 400 `invalid_request`.
    public static func invalidRequest(_ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_request", message: message)
    }

    /// 401 `unauthorized`.
    public static let unauthorized = APIError(
        .unauthorized, code: "unauthorized",
        message: "missing or wrong API key (send Authorization: Bearer <key>)")

    /// 403 `forbidden`.
    public static func forbidden(_ message: String) -> APIError {
        APIError(.forbidden, code: "forbidden", message: message)
    }

    /// 415 `unsupported_media_type`.
    public static let unsupportedMediaType = APIError(
        .unsupportedMediaType, code: "unsupported_media_type",
        message: "a request body must be JSON, sent with Content-Type: application/json")

    /// 413 `too_large`.
    public static func tooLarge(_ message: String) -> APIError {
        APIError(.contentTooLarge, code: "too_large", message: message)
    }

    /// 503 `backplane_unavailable`.
    public static func unavailable(_ message: String) -> APIError {
        APIError(.serviceUnavailable, code: "backplane_unavailable", message: message)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: body))
    }

    /// The JSON body answering this error.
    var body: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeError(self)
        return buffer
    }
}

/// Turns any error a route throws into an ``APIError``, so every failure is JSON.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            throw APIError(describing: error, logger: context.logger)
        }
    }
}

extension APIError {
    /// The API's answer to `error`: a request's own mistakes are 400 `invalid_request`, a
    /// backplane failure 503 `backplane_unavailable`; anything unexpected is logged and 500.
    init(describing error: any Error, logger: Logger) {
        switch error {
        case let error as APIError: self = error
        case let error as HTTPError:
            self.init(
                error.status, code: error.status == .notFound ? "not_found" : "invalid_request",
                message: error.body ?? error.status.reasonPhrase)
        case let error as DecodingError:
            self = .invalidRequest("request body is not the expected JSON: \(Self.describe(error))")
        case let error as IdentifierError: self = .invalidRequest(error.description)
        case let error as PayloadError: self = .invalidRequest(error.description)
        case let error as HelperError: self = .invalidRequest(error.description)
        case let error as TokenError: self.init(.internalServerError, code: "token_error", message: error.description)
        case let error as BackplaneError: self = .unavailable(error.description)
        case is NIOTooManyBytesError: self = .tooLarge("request body is too large")
        default:
            logger.error("server API request failed", metadata: ["error": "\(error)"])
            self.init(.internalServerError, code: "internal", message: "internal error: \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.codingPath.isEmpty
                ? context.debugDescription
                : "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        @unknown default: "\(error)"
        }
    }
}
