import Foundation
public import ImCore
public import Logging
import NIOCore
import Synchronization

/// What a business back-end uses to act on ImServer: mint connect URLs, send to users,
/// channels and everyone, manage channel membership, query presence, force users offline and
/// follow online/offline events. It talks only to the backplane, never to a node directly.
public final class ImHelper: Sendable {
    /// The bus and presence directory shared with the nodes.
    public let backplane: Backplane
    /// Mints connect tokens.
    public let tokens: ConnectTokens
    /// Public URL, subjects, timeouts and the audit hook.
    public let configuration: HelperConfiguration
    let logger: Logger
    private let inbox = Mutex<Task<CommandInbox, any Error>?>(nil)
    let queue: SendQueue
    /// Message ids: 40 random bits tell helpers apart, 40 counter bits number one helper's
    /// messages (a trillion before they repeat); 20 hex digits.
    let messageIDs = UniqueIDs(randomBytes: 5, counterDigits: 10)
    private let droppedEventCount = DropCounter()
    /// The public URL with the token parameter's start (`…?token=` or `…&token=`), made once.
    private let connectURLPrefix: String

    /// A helper on `backplane` that mints tokens with `tokens`.
    public init(
        backplane: Backplane, tokens: ConnectTokens, configuration: HelperConfiguration = HelperConfiguration(),
        logger: Logger = Logger(label: "imhelper")
    ) {
        self.backplane = backplane
        self.tokens = tokens
        self.configuration = configuration
        self.logger = logger
        self.queue = SendQueue(backplane: backplane, subjects: configuration.subjects)
        let separator = configuration.publicURL.utf8.contains(UInt8(ascii: "?")) ? "&" : "?"
        self.connectURLPrefix = configuration.publicURL + separator + "token="
    }

    var subjects: Subjects { configuration.subjects }

    // MARK: Connecting

    /// The longest `meta` a connect URL carries, in UTF-8 bytes.
    public static let maximumMetaLength = 2048
    /// The longest connect URL minted, in bytes: 8 KiB, what common proxies accept in a
    /// request line (nginx's default buffer); nodes accept up to 80 KiB of request line and headers.
    public static let maximumConnectURLLength = 8192

    /// A URL the client opens as its WebSocket: the public URL with a fresh single-use token.
    ///
    /// `meta` may have at most ``maximumMetaLength`` bytes, and the URL at most
    /// ``maximumConnectURLLength`` (a meta full of characters JSON escapes grows six-fold):
    /// beyond either, ``HelperError/metaTooLong(length:maximum:)`` or
    /// ``HelperError/connectURLTooLong(length:maximum:)`` rather than a URL the node or a proxy
    /// would refuse.
    public func connectURL(for client: ClientID, meta: String? = nil) async throws -> String {
        let valid = try Self.validated(client, meta: meta)
        return try connectURL(
            token: try await tokens.mint(for: valid, meta: meta, lifetime: configuration.tokenLifetime))
    }

    /// The URL ``connectURL(for:meta:)`` makes, minted on the calling thread (for a caller on an
    /// event loop): `nil` when the tokens' keys sign only asynchronously (``ConnectTokens``
    /// not made with a secret).
    package func connectURLInPlace(for client: ClientID, meta: String?) throws -> String? {
        let valid = try Self.validated(client, meta: meta)
        let token = try tokens.mintedInPlace(for: valid, meta: meta, lifetime: configuration.tokenLifetime)
        return try token.map(connectURL(token:))
    }

    private static func validated(_ client: ClientID, meta: String?) throws -> ClientID {
        let valid = try ClientID(validating: client.rawValue)
        if let meta, meta.utf8.count > maximumMetaLength {
            throw HelperError.metaTooLong(length: meta.utf8.count, maximum: maximumMetaLength)
        }
        return valid
    }

    private func connectURL(token: String) throws(HelperError) -> String {
        let url = connectURLPrefix + token
        guard url.utf8.count <= Self.maximumConnectURLLength else {
            throw .connectURLTooLong(length: url.utf8.count, maximum: Self.maximumConnectURLLength)
        }
        return url
    }

    // MARK: Sending

    /// Sends `data` to each of `receivers` (duplicates ignored) on every connection they have.
    ///
    /// One presence lookup for all receivers, then one bus message per node that holds any
    /// (both in one round trip when the backplane has a ``NodeRouter`` and no other send is
    /// waiting). Concurrent sends share those round trips (see ``SendQueue``) and keep their order.
    /// With `receipt`, the sender's connections get a `delivered` or `offline` receipt per
    /// receiver, and an `acked` receipt when the receiver's client acknowledges.
    @discardableResult
    public func send(_ data: JSONPayload, from sender: ClientID, to receivers: [ClientID], receipt: Bool = false)
        async throws -> SendResult
    {
        try await send([OutgoingMessage(data, from: sender, to: receivers, receipt: receipt)])[0]
    }

    /// Sends `data` to every member of `channel`, in one publish; returns the message id.
    @discardableResult
    public func send(_ data: JSONPayload, from sender: ClientID, toChannel channel: String) async throws -> String {
        try await send([OutgoingMessage(data, from: sender, toChannel: channel)])[0].id
    }

    /// Sends `data` to every connection of every node; returns the message id.
    @discardableResult
    public func broadcast(_ data: JSONPayload, from sender: ClientID? = nil) async throws -> String {
        try await send([.broadcast(data, from: sender)])[0].id
    }

    /// Sends waiting to join the next batch (for tests and diagnostics).
    package var queuedSends: Int { queue.waiting }

    func makeMessage(_ data: JSONPayload, from sender: ClientID, channel: String?, at timestamp: Int64) -> Message {
        Message(id: messageIDs.next(), sender: sender, channel: channel, timestamp: timestamp, data: data.bytes)
    }

    /// Now, in milliseconds since 1970, as messages carry it.
    func currentTimestamp() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Channels

    /// Adds `client` to `channels`; returns once the nodes holding the client confirmed (or
    /// the command timeout passed), so a message sent next reaches the client.
    public func join(_ client: ClientID, channels: [String]) async throws {
        let channels = try validated(channels)
        try await backplane.presence.join(client, channels: channels)
        try await command([client]) { .join($0, channels: channels) }
    }

    /// Removes `client` from `channels`.
    public func leave(_ client: ClientID, channels: [String]) async throws {
        let channels = try validated(channels)
        try await backplane.presence.leave(client, channels: channels)
        try await command([client]) { .leave($0, channels: channels) }
    }

    /// Removes `clients` from `channel`.
    public func remove(_ clients: [ClientID], fromChannel channel: String) async throws {
        let channel = try validated(channel)
        try await backplane.presence.remove(clients, from: channel)
        try await command(clients) { .leave($0, channels: [channel]) }
    }

    /// Removes every member of `channel`; returns who was removed.
    @discardableResult
    public func clear(channel: String) async throws -> [ClientID] {
        let channel = try validated(channel)
        let removed = try await backplane.presence.clear(channel)
        try await command(removed) { .leave($0, channels: [channel]) }
        return removed
    }

    /// The channels `client` belongs to.
    public func channels(of client: ClientID) async throws -> [String] {
        try await backplane.presence.channels(of: client)
    }

    /// Members of `channel`, a page at a time (pass the last one as `after` for the next).
    public func members(of channel: String, after: ClientID? = nil, limit: Int = 1000) async throws -> [ClientID] {
        try await backplane.presence.members(of: channel, after: after, limit: limit)
    }

    /// Channels with their member and online counts, a page at a time.
    public func channelList(after: String? = nil, limit: Int = 100) async throws -> [ChannelSummary] {
        let names = try await backplane.presence.channelNames(after: after, limit: limit)
        var summaries: [ChannelSummary] = []
        for name in names {
            let stats = try await backplane.presence.stats(of: name)
            summaries.append(ChannelSummary(name: name, members: stats.members, online: stats.online))
        }
        return summaries
    }

    /// Member and online counts of `channel`.
    public func stats(of channel: String) async throws -> ChannelStats {
        try await backplane.presence.stats(of: channel)
    }

    private func validated(_ channels: [String]) throws(HelperError) -> [String] {
        for channel in channels { _ = try validated(channel) }
        return channels
    }

    func validated(_ channel: String) throws(HelperError) -> String {
        guard !channel.isEmpty, channel.utf8.count <= 200 else { throw .invalidChannel(channel) }
        return channel
    }

    // MARK: Presence

    /// Whether `client` has a connection on any node.
    public func isOnline(_ client: ClientID) async throws -> Bool {
        try await backplane.presence.nodes(of: [client])[client] != nil
    }

    /// Whether each of `clients` is online, in one round trip.
    public func onlineStatus(of clients: [ClientID]) async throws -> [ClientID: Bool] {
        let located = try await backplane.presence.nodes(of: clients)
        return Dictionary(clients.map { ($0, located[$0] != nil) }, uniquingKeysWith: { first, _ in first })
    }

    /// Online users, a page at a time.
    public func onlineUsers(after: ClientID? = nil, limit: Int = 1000) async throws -> [ClientID] {
        try await backplane.presence.onlineUsers(after: after, limit: limit)
    }

    /// Closes every connection of `client` with 4003; returns once the nodes confirmed.
    public func forceOffline(_ client: ClientID) async throws {
        try await command([client]) { .forceOffline($0) }
    }

    /// Online and offline events, per user, carrying the token's `meta`, from now on.
    ///
    /// Each call makes its own bus subscription; stop iterating to end it. The stream holds at
    /// most `bufferLimit` events (default ``HelperConfiguration/eventBufferLimit``) for a
    /// consumer that falls behind: then the oldest are dropped, counted in ``droppedEvents``
    /// and logged, so a stalled consumer costs bounded memory.
    public func events(bufferLimit: Int? = nil) async throws -> AsyncStream<PresenceEvent> {
        let limit = max(bufferLimit ?? configuration.eventBufferLimit, 1)
        let subscriber = try await backplane.bus.makeSubscriber()
        try await subscriber.subscribe([subjects.events])
        let (stream, continuation) = AsyncStream<PresenceEvent>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        let logger = logger
        let dropped = droppedEventCount
        let reader = Task {
            var droppedHere = 0
            for await message in subscriber.messages {
                guard case .event(let event)? = try? Envelope(decoding: message.payload) else { continue }
                if case .dropped = continuation.yield(event) {
                    droppedHere += 1
                    dropped.add(1)
                    if droppedHere == 1 || droppedHere.isMultiple(of: 10_000) {
                        logger.warning(
                            "an event stream's consumer is not keeping up: dropped its oldest events",
                            metadata: ["dropped": "\(droppedHere)", "buffer": "\(limit)"])
                    }
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            reader.cancel()
            Task { await subscriber.close() }
        }
        return stream
    }

    /// Events dropped so far, over every ``events(bufferLimit:)`` stream, because their
    /// consumers did not keep up.
    public var droppedEvents: Int { droppedEventCount.value }

    // MARK: Commands

    /// Sends `make(user)` to every node holding each of `users` and waits for confirmations.
    private func command(_ users: [ClientID], _ make: (ClientID) -> NodeCommand) async throws {
        guard !users.isEmpty else { return }
        let located = try await backplane.presence.nodes(of: users)
        guard !located.isEmpty else { return }
        let inbox = try await openInbox()
        let address = inbox.makeAddress()
        var batch: [BusMessage] = []
        for user in users {
            for node in (located[user] ?? []).sorted() {
                let envelope = Envelope.command(make(user), reply: address)
                batch.append(BusMessage(subject: subjects.node(node), payload: envelope.encoded()))
            }
        }
        inbox.expect(address.requestID, count: batch.count)
        try await backplane.bus.publish(batch)
        if await !inbox.wait(for: address.requestID, timeout: configuration.commandTimeout) {
            logger.warning("a node did not confirm a command in time; it applies when the node recovers or is reaped")
        }
    }

    private func openInbox() async throws -> CommandInbox {
        let task = inbox.withLock { inbox in
            if let task = inbox { return task }
            let bus = backplane.bus
            let subjects = subjects
            let logger = logger
            let task = Task { try await CommandInbox.open(bus: bus, subjects: subjects, logger: logger) }
            inbox = task
            return task
        }
        do {
            return try await task.value
        } catch {
            inbox.withLock { $0 = nil }
            throw error
        }
    }

    /// Stops the helper's own bus subscription (event streams end on their own).
    public func close() async {
        let task = inbox.withLock { inbox in
            defer { inbox = nil }
            return inbox
        }
        await (try? task?.value)?.close()
    }
}

/// Why the helper refused a request.
public enum HelperError: Error, Equatable, CustomStringConvertible {
    /// A channel name is empty or longer than 200 bytes.
    case invalidChannel(String)
    /// A connect URL's `meta` is longer than ``ImHelper/maximumMetaLength`` bytes.
    case metaTooLong(length: Int, maximum: Int)
    /// A connect URL would be longer than ``ImHelper/maximumConnectURLLength`` bytes.
    case connectURLTooLong(length: Int, maximum: Int)

    public var description: String {
        switch self {
        case .invalidChannel(let name): "invalid channel name '\(name.prefix(40))': must be 1 to 200 bytes"
        case .metaTooLong(let length, let maximum):
            "meta has \(length) bytes; a connect URL carries at most \(maximum)"
        case .connectURLTooLong(let length, let maximum):
            "the connect URL would have \(length) bytes, more than the \(maximum) a node or proxy is sure to accept "
                + "(meta grows when JSON escapes it: shorten it)"
        }
    }
}

/// A count shared by the helper and its event streams' reader tasks.
final class DropCounter: Sendable {
    private let count = Atomic<Int>(0)

    func add(_ value: Int) { count.add(value, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
