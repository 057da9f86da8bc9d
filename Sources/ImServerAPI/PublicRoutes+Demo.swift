public import ImServer
import Foundation
import ImCore
public import ImHelper
import NIOCore
import NIOHTTP1
public import ServiceLifecycle

extension PublicRoutes {
    /// Serves the demo chat page at `/` and its demo-only endpoints under `/demo/`.
    ///
    /// The endpoints trust the user name the page sends: they exist only with `--demo`. With
    /// `loopbackOnly` (the default) they answer only requests whose `Host` is a loopback name
    /// and whose `Origin`, if any, is a loopback page (403 otherwise: DNS rebinding, cross-site
    /// requests); a `POST` must be `application/json` (415 otherwise).
    public mutating func addDemo(helper: ImHelper, lobby: String = "lobby", loopbackOnly: Bool = true) {
        let demoGuard = DemoGuard(loopbackOnly: loopbackOnly)
        add(.GET, "/", guardedBy: demoGuard) { _ in
            PublicResponse(contentType: "text/html; charset=utf-8", text: DemoPage.html)
        }
        add(.GET, "/demo/login", guardedBy: demoGuard) { request in
            guard let name = request.query["user"], let user = try? ClientID(validating: name),
                name.utf8.count <= DemoLimits.nameBytes
            else { return .error(.badRequest, "user must be 1 to \(DemoLimits.nameBytes) bytes") }
            guard name != DemoLimits.announcer.rawValue else {
                return .error(.badRequest, "the name '\(name)' is reserved for the demo's announcements")
            }
            do {
                try await helper.join(user, channels: [lobby])
                let url = try await helper.connectURL(for: user, meta: "demo")
                return .json(["user": user.rawValue, "url": url])
            } catch {
                return .error(.serviceUnavailable, "\(error)")
            }
        }
        add(.GET, "/demo/online", guardedBy: demoGuard) { _ in
            do {
                let users = try await helper.onlineUsers(limit: 500).map(\.rawValue)
                return PublicResponse(contentType: "application/json", text: try encodeJSON(["users": users]))
            } catch {
                return .error(.serviceUnavailable, "\(error)")
            }
        }
        add(.POST, "/demo/send", guardedBy: demoGuard) { request in
            guard let body = try? JSONDecoder().decode(DemoSend.self, from: Data(request.body.readableBytesView)),
                let from = try? ClientID(validating: body.from), let to = try? ClientID(validating: body.to)
            else { return .error(.badRequest, #"expected {"from":…,"to":…,"text":…}"#) }
            if let refusal = DemoLimits.refusal(of: body.text) { return refusal }
            do {
                let result = try await helper.send(
                    try JSONPayload(encoding: ["text": body.text]), from: from, to: [to],
                    receipt: true)
                return PublicResponse(contentType: "application/json", text: try encodeJSON(result))
            } catch {
                return .error(.serviceUnavailable, "\(error)")
            }
        }
        add(.POST, "/demo/room", guardedBy: demoGuard) { request in
            guard let body = try? JSONDecoder().decode(DemoRoom.self, from: Data(request.body.readableBytesView)),
                let from = try? ClientID(validating: body.from)
            else { return .error(.badRequest, #"expected {"from":…,"text":…}"#) }
            if let refusal = DemoLimits.refusal(of: body.text) { return refusal }
            do {
                let id = try await helper.send(
                    try JSONPayload(encoding: ["text": body.text]), from: from,
                    toChannel: lobby)
                return .json(["id": id])
            } catch {
                return .error(.serviceUnavailable, "\(error)")
            }
        }
    }
}

/// Tells every demo page who came online or went offline: messages from `system` to the
/// demo's room, so only the demo's users get them (not every client of the node).
public struct DemoAnnouncer: Service {
    let helper: ImHelper
    let lobby: String

    /// An announcer using `helper`, announcing in `lobby` (the room of ``PublicRoutes/addDemo(helper:lobby:loopbackOnly:)``).
    public init(helper: ImHelper, lobby: String = "lobby") {
        self.helper = helper
        self.lobby = lobby
    }

    public func run() async throws {
        let events = try await helper.events()
        await cancelWhenGracefulShutdown {
            for await event in events {
                let payload = try? JSONPayload(encoding: ["event": event.kind.name, "user": event.client.rawValue])
                if let payload { _ = try? await helper.send(payload, from: DemoLimits.announcer, toChannel: lobby) }
            }
        }
    }
}

/// What the demo accepts.
enum DemoLimits {
    /// The longest user name, in UTF-8 bytes.
    static let nameBytes = 32
    /// The most characters a message may have.
    static let textCharacters = 2000
    /// Who announces presence in the room; no user may take the name.
    static let announcer: ClientID = "system"

    /// A 400 for a message text that is empty or too long, or `nil` when it is fine.
    static func refusal(of text: String) -> PublicResponse? {
        guard !text.isEmpty, text.count <= textCharacters else {
            return .error(.badRequest, "a message has 1 to \(textCharacters) characters (this one has \(text.count))")
        }
        return nil
    }
}

private struct DemoSend: Decodable {
    var from: String
    var to: String
    var text: String
}

private struct DemoRoom: Decodable {
    var from: String
    var text: String
}

private func encodeJSON(_ value: some Encodable) throws -> String {
    String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
}

extension PublicResponse {
    /// A JSON object of strings.
    static func json(_ object: [String: String]) -> PublicResponse {
        PublicResponse(contentType: "application/json", text: (try? encodeJSON(object)) ?? "{}")
    }
}
