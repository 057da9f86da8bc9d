public import ImCore

/// A test client that reads the node's frames as JSON, whatever its transport
/// (``TestClient``, ``EventStreamClient``).
public protocol JSONFrameReading: Sendable {
    /// The next frame parsed as JSON; throws if the next thing received is not one.
    func nextJSON(timeout: Duration) async throws -> JSONValue
    /// Drops the connection (its socket).
    func disconnect() async
}

extension JSONFrameReading {
    /// The next JSON frame whose `type` is `type`, skipping others of the types in `skipping`.
    public func next(type: String, skipping: Set<String> = [], timeout: Duration = .seconds(5)) async throws
        -> JSONValue
    {
        while true {
            let value = try await nextJSON(timeout: timeout)
            let actual = value["type"]?.string ?? ""
            if actual == type { return value }
            guard skipping.contains(actual) else { throw TestClientError.unexpected(.text(value.description)) }
        }
    }

    /// Waits for `ready` (the first frame); closes the connection and throws if something else
    /// comes first.
    public func awaitReady(timeout: Duration = .seconds(10)) async throws -> JSONValue {
        let ready: JSONValue
        do {
            ready = try await nextJSON(timeout: timeout)
        } catch {
            await disconnect()
            throw error
        }
        guard ready["type"]?.string == "ready" else {
            await disconnect()
            throw TestClientError.unexpected(.text(ready.description))
        }
        return ready
    }
}
