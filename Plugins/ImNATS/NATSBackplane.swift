public import ImBackplane
public import Logging

extension Backplane {
    /// A backplane on NATS: ``NATSBus`` on core subjects and ``NATSPresence`` in JetStream KV,
    /// sharing one nats.c connection.
    public static func nats(_ configuration: NATSConfiguration, logger: Logger) throws(BackplaneError) -> Backplane {
        let client = try NATSClient(configuration: configuration, logger: logger)
        return Backplane(
            bus: NATSBus(client: client),
            presence: try NATSPresence(client: client, ownsClient: false, logger: logger))
    }
}

extension BackplaneFactory {
    /// Registers `nats://` and `tls://`.
    public mutating func registerNATS() {
        let maker: Maker = { url, logger in
            try .nats(try NATSConfiguration(url: url.absoluteString), logger: logger)
        }
        register(scheme: "nats", maker)
        register(scheme: "tls", maker)
    }
}
