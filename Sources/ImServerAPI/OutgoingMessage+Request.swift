import ImCore
import ImHelper

extension OutgoingMessage {
    /// The message of a `POST /v1/messages` body: `from`, `to` (at least one), `data` and an
    /// optional `receipt`.
    static func toUsers(_ body: RequestBody) throws(APIError) -> OutgoingMessage {
        let receivers = try body.strings("to")
        guard !receivers.isEmpty else { throw .invalidRequest("\(body.describe("to")) must name at least one client") }
        return OutgoingMessage(
            try body.payload("data"), from: try body.client("from"),
            to: try receivers.map { text throws(APIError) in try body.client(text, field: "to") },
            receipt: try body.bool("receipt") ?? false)
    }

    /// The message of a `POST /v1/channels/{channel}/messages` body: `from` and `data`.
    static func toChannel(_ channel: String, _ body: RequestBody) throws(APIError) -> OutgoingMessage {
        OutgoingMessage(try body.payload("data"), from: try body.client("from"), toChannel: channel)
    }

    /// The message of a `POST /v1/broadcasts` body: `data` and an optional `from`.
    static func toEveryone(_ body: RequestBody) throws(APIError) -> OutgoingMessage {
        let sender = try body.string("from").map { text throws(APIError) in try body.client(text, field: "from") }
        return .broadcast(try body.payload("data"), from: sender)
    }

    /// The message of one item of `POST /v1/batch`: a body of one of the three kinds above,
    /// told apart by which of `to`, `channel` or `broadcast: true` it has (exactly one).
    static func batchItem(_ body: RequestBody) throws(APIError) -> OutgoingMessage {
        let broadcast = try body.bool("broadcast") ?? false
        let kinds = (body.has("to") ? 1 : 0) + (body.has("channel") ? 1 : 0) + (broadcast ? 1 : 0)
        guard kinds == 1 else {
            throw .invalidRequest(
                "\(body.path) must have exactly one of 'to' (users), 'channel' or 'broadcast': true")
        }
        if broadcast { return try toEveryone(body) }
        if let channel = try body.string("channel") { return try toChannel(channel, body) }
        return try toUsers(body)
    }
}

extension RequestBody {
    /// The client id in string member `name`, which must be there.
    func client(_ name: String) throws(APIError) -> ClientID {
        try client(try requiredString(name), field: name)
    }

    /// The client and meta a connect URL is asked for with (`POST /v1/connect-url`, an item of
    /// `POST /v1/connect-urls`): `client` required, `meta` a string or absent.
    func connectURLRequest() throws(APIError) -> (client: ClientID, meta: String?) {
        (try client("client"), try string("meta"))
    }

    /// `text` as a client id; an invalid one is a 400 naming `field`.
    func client(_ text: String, field: String) throws(APIError) -> ClientID {
        do {
            return try ClientID(validating: text)
        } catch {
            throw .invalidRequest("\(describe(field)): \(error.description)")
        }
    }
}
