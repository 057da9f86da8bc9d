public import ImBackplane
import NIOCore

extension RedisPresence: NodeRouter {
    /// Finds the users' nodes and publishes there in one script (one round trip, atomic on the
    /// server): the connection hashes are read and the payloads published by Redis itself.
    /// The bus shares this presence's connection pool, so its subscribers get what the script
    /// publishes as any `PUBLISH`.
    public func publish(_ messages: [RoutedMessage], toNodesUnder nodeSubjectPrefix: String) async throws
        -> [ClientID: Set<NodeID>]
    {
        let users = messages.flatMap(\.users)
        guard !users.isEmpty else { return [:] }
        var arguments = [ByteBuffer(string: nodeSubjectPrefix)]
        arguments.reserveCapacity(1 + 2 * messages.count)
        for message in messages where !message.users.isEmpty {
            arguments.append(ByteBuffer(string: String(message.users.count)))
            arguments.append(message.payload)
        }
        let reply = try await client.evaluate(RedisScripts.route, keys: users.map(connections), arguments: arguments)
        guard let found = reply.array, found.count == users.count else {
            throw BackplaneError.protocolViolation("redis answered a routed publish with \(reply)")
        }
        var located: [ClientID: Set<NodeID>] = [:]
        for (user, nodes) in zip(users, found) {
            guard let nodes = nodes.array else {
                throw BackplaneError.protocolViolation("redis answered a routed publish with \(reply)")
            }
            for node in nodes.compactMap(\.string) { located[user, default: []].insert(NodeID(rawValue: node)) }
        }
        return located
    }
}
