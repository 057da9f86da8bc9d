extension FlatJSONObject {
    /// The members of one object, in the order read.
    ///
    /// Looked up by name with a linear scan: for the few members of a request body, a batch
    /// item or a token, comparing a handful of short names costs less than hashing each one into
    /// a dictionary and hashing again for every lookup (a thousand-item batch did both a thousand
    /// times). Past ``linearLimit`` members the names are also hashed, so an object of many
    /// members — hostile or not — is still read and checked for duplicates in linear time.
    package struct Members: Sendable, Equatable {
        /// One member and its name.
        package struct Entry: Sendable, Equatable {
            /// The member's name, unescaped.
            package var name: String
            /// Its value and where it lies.
            package var member: Member
        }

        /// The most members looked up by a scan alone.
        package static let linearLimit = 8

        /// The members, in the order read.
        package private(set) var entries: [Entry] = []
        /// Where each name is in ``entries``, once there are more than ``linearLimit``.
        private var positions: [String: Int]?

        /// No members.
        package init() {}

        /// How many members there are.
        package var count: Int { entries.count }

        /// The member named `name`, if there is one.
        package subscript(name: String) -> Member? {
            if let positions { return positions[name].map { entries[$0].member } }
            for entry in entries where entry.name == name { return entry.member }
            return nil
        }

        /// Adds a member; returns `false`, adding nothing, when the name is there already.
        package mutating func add(_ name: String, _ member: Member) -> Bool {
            guard self[name] == nil else { return false }
            // Room for a request body's or a batch item's few members in one allocation.
            if entries.isEmpty { entries.reserveCapacity(4) }
            entries.append(Entry(name: name, member: member))
            if positions != nil {
                positions?[name] = entries.count - 1
            } else if entries.count > Self.linearLimit {
                var index: [String: Int] = [:]
                index.reserveCapacity(entries.count * 2)
                for (position, entry) in entries.enumerated() { index[entry.name] = position }
                positions = index
            }
            return true
        }

        package static func == (lhs: Members, rhs: Members) -> Bool { lhs.entries == rhs.entries }
    }
}
