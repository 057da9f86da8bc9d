import Foundation
public import ImClient
public import ImCore

/// An ``ImClient`` (the Swift client product) connected for a test: what an app would use for
/// an ordinary connection, with its events awaitable one at a time with a timeout. Made by
/// ``TestCluster/session(_:node:configuration:)``; the raw ``TestClient`` stays for tests that
/// speak the wire protocol by hand or misbehave on purpose.
public final class ClientSession: Sendable {
    /// The client.
    public let client: ImClient
    private let events = AsyncQueue<ClientEvent>()

    /// Reads the events of `client` from now on (call before ``ImClient/connect()``, or
    /// events may be missed only if they fall beyond the client's own buffer).
    public init(_ client: ImClient) {
        self.client = client
        let events = self.events
        Task {
            for await event in client.events { events.push(event) }
            events.finish()
        }
    }

    /// The next event that `matches`, skipping others; throws ``TimedOut`` after `timeout`,
    /// ``TestClientError/closed`` when the events ended.
    public func next(timeout: Duration = .seconds(5), where matches: (ClientEvent) -> Bool = { _ in true })
        async throws -> ClientEvent
    {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let event = try await events.next(timeout: deadline - ContinuousClock.now) else {
                throw TestClientError.closed
            }
            if matches(event) { return event }
        }
    }

    /// Waits for `ready`, skipping nothing; throws if another event comes first.
    public func ready(timeout: Duration = .seconds(5)) async throws {
        let event = try await next(timeout: timeout)
        guard case .ready = event else { throw ClientSessionError.unexpected(event) }
    }

    /// The next message; throws if a receipt or a disconnection comes first (receipts are
    /// read with ``nextReceipt(timeout:)``).
    public func nextMessage(timeout: Duration = .seconds(5)) async throws -> IncomingMessage {
        let event = try await next(timeout: timeout)
        guard case .message(let message) = event else { throw ClientSessionError.unexpected(event) }
        return message
    }

    /// The next receipt, skipping messages; throws if a disconnection comes first.
    public func nextReceipt(timeout: Duration = .seconds(5)) async throws -> IncomingReceipt {
        let event = try await next(timeout: timeout) { if case .message = $0 { false } else { true } }
        guard case .receipt(let receipt) = event else { throw ClientSessionError.unexpected(event) }
        return receipt
    }

    /// The next disconnection, skipping messages and receipts: the server's close code (`nil`
    /// when none came) and whether the client stopped for good (after a final code such as 4003).
    public func disconnection(timeout: Duration = .seconds(10)) async throws -> (code: UInt16?, stopped: Bool) {
        let event = try await next(timeout: timeout) { if case .disconnected = $0 { true } else { false } }
        guard case .disconnected(let code, _, let retryIn) = event else { throw ClientSessionError.unexpected(event) }
        return (code, retryIn == nil)
    }

    /// Whether the events ended (within `timeout`) with nothing more.
    public func ended(timeout: Duration = .seconds(5)) async -> Bool {
        do {
            return try await events.next(timeout: timeout) == nil
        } catch {
            return false
        }
    }

    /// Disconnects for good.
    public func close() async {
        await client.close()
    }
}

/// What a ``ClientSession`` got instead of what a test waited for.
public enum ClientSessionError: Error, CustomStringConvertible {
    /// Another event came first.
    case unexpected(ClientEvent)

    public var description: String {
        switch self {
        case .unexpected(let event): "unexpected event \(event)"
        }
    }
}

extension IncomingMessage {
    /// The message's data parsed (`nil` if it is not JSON, which a node never sends).
    public var value: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: data) }
}

extension TestCluster {
    /// Connects `user` (with the token's `meta`) to node `node` with an ``ImClient`` (quick
    /// reconnects, a fresh URL each time) and waits for `ready`. ``stop()`` closes it.
    public func session(
        _ user: ClientID, node: Int = 0, meta: String? = nil, configuration: ClientConfiguration = .quickRetries
    ) async throws -> ClientSession {
        let client = ImClient(configuration: configuration) { try await self.url(for: user, node: node, meta: meta) }
        let session = ClientSession(client)
        sessions.withLock { $0.append(session) }
        client.connect()
        do {
            try await session.ready()
        } catch {
            await client.close()
            throw error
        }
        return session
    }
}

extension ClientConfiguration {
    /// Retries after 20–100 ms, so tests do not wait out the default backoff.
    public static var quickRetries: ClientConfiguration {
        var configuration = ClientConfiguration()
        configuration.minimumDelay = .milliseconds(20)
        configuration.maximumDelay = .milliseconds(100)
        return configuration
    }
}
