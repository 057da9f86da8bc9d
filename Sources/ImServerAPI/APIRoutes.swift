import Foundation
public import Hummingbird
import ImCore
public import ImHelper
import NIOCore
import ServiceLifecycle

/// The routes of the server API, one per ``ImHelper`` operation.
struct APIRoutes: Sendable {
    typealias Models = APIModels
    /// The largest request body of a send endpoint or a batch: 2 MiB.
    static let maximumBodyBytes = 2 << 20
    let helper: ImHelper
    /// How far an event stream reader may fall behind.
    var eventLimits = EventStreamLimits()

    func register(on api: RouterGroup<BasicRequestContext>) {
        api.post("connect-url") { request, context -> Response in
            let body = try await RequestBody.read(request, limit: Self.maximumBodyBytes)
            let asked = try body.connectURLRequest()
            let url = try await helper.connectURL(for: asked.client, meta: asked.meta)
            return JSONResponse.ok(capacity: url.utf8.count + 16) { $0.writeConnectURL(url) }
        }
        api.post("messages") { request, _ in try await send(request) { .users } }
        api.post("channels/:channel/messages") { request, context in
            try await send(request) { .channel(try channel(context)) }
        }
        api.post("broadcasts") { request, _ in try await send(request) { .everyone } }
        registerBatches(on: api)
        registerChannels(on: api)
        registerClients(on: api)
        api.get("events") { _, context -> Response in
            try await EventStream(helper: helper, limits: eventLimits).response(logger: context.logger)
        }
    }

    /// A single send: the body read, then the route (so a body's faults are named first).
    /// ``APIFastLane`` answers most of these before they get here, the same way.
    private func send(_ request: Request, along route: () throws -> SendRoute) async throws -> Response {
        let body = try await RequestBody.read(request, limit: Self.maximumBodyBytes)
        let route = try route()
        let result = try await helper.send([try route.message(from: body)])[0]
        return JSONResponse.ok { $0.writeSendResult(result, withOffline: route.answersOffline) }
    }

    private func registerChannels(on api: RouterGroup<BasicRequestContext>) {
        api.get("channels") { request, _ -> Models.ChannelPage in
            let (after, limit) = try page(request, maximum: 1000, default: 100)
            let channels = try await helper.channelList(after: after, limit: limit)
            return Models.ChannelPage(channels: channels, next: channels.count == limit ? channels.last?.name : nil)
        }
        api.get("channels/:channel") { _, context -> ChannelSummary in
            let name = try channel(context)
            let stats = try await helper.stats(of: name)
            return ChannelSummary(name: name, members: stats.members, online: stats.online)
        }
        api.get("channels/:channel/members") { request, context -> Models.ClientPage in
            let (after, limit) = try page(request, maximum: 10_000, default: 1000)
            let members = try await helper.members(
                of: try channel(context), after: after.map(ClientID.init(rawValue:)),
                limit: limit)
            return Models.ClientPage(
                clients: members.map(\.rawValue),
                next: members.count == limit ? members.last?.rawValue : nil)
        }
        api.post("channels/:channel/remove") { request, context -> Models.Done in
            let body = try await request.decode(as: Models.ClientsRequest.self, context: context)
            try await helper.remove(
                try body.clients.map { try ClientID(validating: $0) }, fromChannel: try channel(context))
            return Models.Done()
        }
        api.delete("channels/:channel/members") { _, context -> Models.Removed in
            Models.Removed(removed: try await helper.clear(channel: try channel(context)).map(\.rawValue))
        }
    }

    private func registerClients(on api: RouterGroup<BasicRequestContext>) {
        api.get("clients/:client/channels") { _, context -> Models.ClientChannels in
            let id = try client(context)
            return Models.ClientChannels(client: id.rawValue, channels: try await helper.channels(of: id))
        }
        api.post("clients/:client/join") { request, context -> Models.ClientChannels in
            let id = try client(context)
            let body = try await request.decode(as: Models.ChannelsRequest.self, context: context)
            try await helper.join(id, channels: body.channels)
            return Models.ClientChannels(client: id.rawValue, channels: try await helper.channels(of: id))
        }
        api.post("clients/:client/leave") { request, context -> Models.ClientChannels in
            let id = try client(context)
            let body = try await request.decode(as: Models.ChannelsRequest.self, context: context)
            try await helper.leave(id, channels: body.channels)
            return Models.ClientChannels(client: id.rawValue, channels: try await helper.channels(of: id))
        }
        api.get("clients/:client/online") { _, context -> Models.OnlineStatus in
            let id = try client(context)
            return Models.OnlineStatus(client: id.rawValue, online: try await helper.isOnline(id))
        }
        api.post("clients/:client/offline") { _, context -> Models.Done in
            try await helper.forceOffline(try client(context))
            return Models.Done()
        }
        api.get("online") { request, _ -> Models.ClientPage in
            let (after, limit) = try page(request, maximum: 10_000, default: 1000)
            let users = try await helper.onlineUsers(after: after.map(ClientID.init(rawValue:)), limit: limit)
            return Models.ClientPage(
                clients: users.map(\.rawValue), next: users.count == limit ? users.last?.rawValue : nil)
        }
        api.post("online") { request, context -> Models.OnlineStatuses in
            let body = try await request.decode(as: Models.ClientsRequest.self, context: context)
            let status = try await helper.onlineStatus(of: try body.clients.map { try ClientID(validating: $0) })
            return Models.OnlineStatuses(
                online: Dictionary(uniqueKeysWithValues: status.map { ($0.key.rawValue, $0.value) }))
        }
    }

    func channel(_ context: BasicRequestContext) throws -> String {
        try Self.channelName(fromPathSegment: try context.parameters.require("channel"))
    }

    /// The channel a path segment names (percent-decoded), or an error when it names none.
    static func channelName(fromPathSegment raw: String) throws(HelperError) -> String {
        // Foundation's decoding costs a microsecond; most names have nothing to decode.
        let name = raw.utf8.contains(UInt8(ascii: "%")) ? raw.removingPercentEncoding ?? raw : raw
        guard !name.isEmpty, name.utf8.count <= 200 else { throw .invalidChannel(name) }
        return name
    }

    private func client(_ context: BasicRequestContext) throws -> ClientID {
        let raw = try context.parameters.require("client")
        return try ClientID(validating: raw.removingPercentEncoding ?? raw)
    }

    private func page(_ request: Request, maximum: Int, default fallback: Int) throws -> (String?, Int) {
        let query = request.uri.queryParameters
        let after = query.get("after").flatMap { $0.isEmpty ? nil : $0 }
        guard let rawLimit = query.get("limit") else { return (after, fallback) }
        guard let limit = Int(rawLimit), (1...maximum).contains(limit) else {
            throw APIError.invalidRequest("limit must be a whole number from 1 to \(maximum)")
        }
        return (after, limit)
    }
}

/// An event as the API sends it.
struct EventBody: Encodable {
    var event: String
    var client: String
    var node: String
    var meta: String?
    var ts: Int64

    init(_ event: PresenceEvent) {
        self.event = event.kind.name
        self.client = event.client.rawValue
        self.node = event.node.rawValue
        self.meta = event.meta
        self.ts = event.timestamp
    }
}

extension ChannelSummary: ResponseEncodable {}
extension APIModels.ClientChannels: ResponseEncodable {}
extension APIModels.ChannelPage: ResponseEncodable {}
extension APIModels.ClientPage: ResponseEncodable {}
extension APIModels.OnlineStatus: ResponseEncodable {}
extension APIModels.OnlineStatuses: ResponseEncodable {}
extension APIModels.Removed: ResponseEncodable {}
extension APIModels.Done: ResponseEncodable {}
