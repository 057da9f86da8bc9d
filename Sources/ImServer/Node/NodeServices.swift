public import ImCore
public import ServiceLifecycle

/// The services of a process that runs a node, in the order a `ServiceGroup` must hold them.
public enum NodeServices {
    /// `backplane`, then `node`, then `dependents` (the server API, a demo announcer: what
    /// uses the node or the backplane and must stop before them).
    ///
    /// The order is the shutdown order, reversed: a `ServiceGroup` triggers graceful shutdown
    /// on its services from the last to the first, each only after the one after it has
    /// returned. So the dependents stop first, then the node (it closes its connections,
    /// removes itself from Presence and announces its users offline on the bus), and the
    /// backplane last, once nothing needs it any more. Putting the backplane anywhere but
    /// first would lose those offline announcements and leave the node's connections in
    /// Presence until its lease runs out.
    public static func ordered(backplane: Backplane, node: ImNode, dependents: [any Service] = []) -> [any Service] {
        [backplane, node] + dependents
    }
}
