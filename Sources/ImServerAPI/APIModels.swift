import ImCore
import ImHelper

/// Request and response bodies of the server API (docs/openapi.yaml describes them).
enum APIModels {
    struct ChannelsRequest: Decodable {
        var channels: [String]
    }

    struct ClientsRequest: Decodable {
        var clients: [String]
    }

    struct ClientChannels: Codable {
        var client: String
        var channels: [String]
    }

    struct ChannelPage: Codable {
        var channels: [ChannelSummary]
        var next: String?
    }

    struct ClientPage: Codable {
        var clients: [String]
        var next: String?
    }

    struct OnlineStatus: Codable {
        var client: String
        var online: Bool
    }

    struct OnlineStatuses: Codable {
        var online: [String: Bool]
    }

    struct Removed: Codable {
        var removed: [String]
    }

    struct Done: Codable {
        var ok = true
    }
}
