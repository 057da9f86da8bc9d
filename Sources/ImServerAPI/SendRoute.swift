import ImHelper

/// One of the API's single-send endpoints, told from a request's method and path the way the
/// router tells them: `POST /v1/messages`, `POST /v1/channels/{channel}/messages` and
/// `POST /v1/broadcasts`.
enum SendRoute: Equatable {
    /// `POST /v1/messages`.
    case users
    /// `POST /v1/channels/{channel}/messages`, the channel's name decoded and checked.
    case channel(String)
    /// `POST /v1/broadcasts`.
    case everyone

    /// The route of a `POST` to `path` (a request's target), or `nil` when it is not exactly one
    /// of the three (a query, an invalid channel segment, a trailing slash…).
    init?(postTo path: String) {
        switch path {
        case "/v1/messages": self = .users
        case "/v1/broadcasts": self = .everyone
        default:
            let prefix = "/v1/channels/"
            let suffix = "/messages"
            guard path.utf8.count > prefix.utf8.count + suffix.utf8.count, path.hasPrefix(prefix),
                path.hasSuffix(suffix)
            else { return nil }
            let segment = path.utf8.dropFirst(prefix.utf8.count).dropLast(suffix.utf8.count)
            guard !segment.contains(UInt8(ascii: "/")), !segment.contains(UInt8(ascii: "?")),
                !segment.contains(UInt8(ascii: "#")), let raw = String(segment),
                let name = try? APIRoutes.channelName(fromPathSegment: raw)
            else { return nil }
            self = .channel(name)
        }
    }

    /// The message a request's body sends along this route.
    func message(from body: RequestBody) throws(APIError) -> OutgoingMessage {
        switch self {
        case .users: try OutgoingMessage.toUsers(body)
        case .channel(let name): try OutgoingMessage.toChannel(name, body)
        case .everyone: try OutgoingMessage.toEveryone(body)
        }
    }

    /// Whether the answer lists the receivers who were offline (messages to users only).
    var answersOffline: Bool { self == .users }
}
