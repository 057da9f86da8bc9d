/// The bus subjects ImServer uses, under a configurable prefix (default `im`).
public struct Subjects: Sendable, Hashable {
    /// The prefix every subject starts with.
    public let prefix: String

    /// Subjects under `prefix`.
    public init(prefix: String = "im") { self.prefix = prefix }

    /// Deliveries and commands for one node: `im.node.<id>`.
    public func node(_ node: NodeID) -> String { nodePrefix + node.rawValue }
    /// What every node's subject starts with: `im.node.`.
    public var nodePrefix: String { "\(prefix).node." }
    /// Messages for one channel: `im.chan.<name>`.
    public func channel(_ name: String) -> String { "\(prefix).chan.\(name)" }
    /// Messages for every connection: `im.all`.
    public var broadcast: String { "\(prefix).all" }
    /// Online/offline events, for helpers: `im.events`.
    public var events: String { "\(prefix).events" }
    /// Confirmations for one helper's commands: `im.inbox.<id>`.
    public func inbox(_ id: String) -> String { "\(prefix).inbox.\(id)" }
}
