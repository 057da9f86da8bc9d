import NIOCore

extension NodeCore {
    /// The body of `GET /health`: 200 when the backplane (bus and presence) is up and the node
    /// linked to it (lease taken, own subject subscribed), 503 otherwise.
    public func healthResponse() -> PublicResponse {
        let health = isLinked ? backplane.health : .down("node not yet subscribed to its subject")
        let body = """
            {"status":"\(health.isUp ? "up" : "down")","node":\(jsonQuoted(configuration.nodeID.rawValue)),\
            "connections":\(stats.openConnections),"backplane":\(jsonQuoted(health.description))}
            """
        return PublicResponse(
            status: health.isUp ? .ok : .serviceUnavailable, contentType: "application/json",
            text: body)
    }
}

/// `text` as a JSON string literal.
package func jsonQuoted(_ text: String) -> String {
    var buffer = ByteBuffer()
    buffer.writeJSONString(text)
    return String(buffer: buffer)
}
