import CNATS
import ImBackplane
import NIOPosix

/// One JetStream KV bucket, spoken to directly: reads are direct gets and writes are publishes
/// to `$KV.<bucket>.<key>` with an expected last revision where they must not race (the same
/// wire operations as nats.c's `kvStore_Get`/`kvStore_Update`), sent many at once through
/// ``NATSRequests``. Listing keys uses nats.c's KV watcher.
///
/// The bucket is the stream `KV_<bucket>` laid out as NATS KV buckets are (one value per key,
/// direct gets allowed), so `nats kv` tools can read it.
struct NATSKeyValue: Sendable {
    /// A key's latest state: its value, or a delete marker (`isDeleted`), with its revision.
    struct Entry: Sendable {
        var key: String
        var revision: UInt64
        var value: [UInt8]
        var isDeleted: Bool
        /// When the server stored it, in nanoseconds since 1970 (server clock).
        var created: Int64
    }

    /// One write of a batch.
    enum Write: Sendable {
        /// Stores `value`; with `expected`, only if the key's revision is still that (0: only if
        /// the key never had a value, or its last one was deleted before revision… see
        /// ``NATSPresence`` for how deleted keys are recreated).
        case put(key: String, value: [UInt8], expected: UInt64? = nil)
        /// Deletes the key; with `expected`, only at that revision (see ``write(_:)``).
        case delete(key: String, expected: UInt64? = nil)
    }

    /// What a write did.
    enum Outcome: Sendable, Equatable {
        case stored(revision: UInt64)
        /// The key's revision was not the expected one: someone else wrote it first.
        case conflict
    }

    /// The bucket's name (`<prefix>_<role>`).
    let bucket: String
    /// Whether values are kept on disk (they survive a NATS restart) or in memory.
    let persistent: Bool
    /// The longest a value lives, or `nil` for ever.
    let maximumAge: Duration?
    let requests: NATSRequests
    let client: NATSClient
    /// How long a deleted key's marker stays before it is removed, for buckets that a
    /// ``ConnectionReplica`` watches (a watcher sees a marker, not a removed message); `nil`
    /// removes the key's message at once.
    var markerLinger: Duration? = nil

    var stream: String { "KV_" + bucket }

    /// Creates the bucket's stream, or brings an existing one to this layout; throws a clear
    /// error when the server has no JetStream.
    func create() async throws(BackplaneError) {
        let ageNanoseconds =
            maximumAge.map { $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 } ?? 0
        let duplicates = maximumAge == nil ? 120_000_000_000 : min(ageNanoseconds, 120_000_000_000)
        let replicas = client.configuration.replicas
        let config =
            #"{"name":"\#(stream)","subjects":["$KV.\#(bucket).>"],"retention":"limits","max_consumers":-1,"#
            + #""max_msgs_per_subject":1,"max_msgs":-1,"max_bytes":-1,"max_age":\#(ageNanoseconds),"#
            + #""max_msg_size":-1,"storage":"\#(persistent ? "file" : "memory")","discard":"new","#
            + #""num_replicas":\#(replicas),"duplicate_window":\#(duplicates),"allow_rollup_hdrs":true,"#
            + #""deny_delete":false,"deny_purge":false,"allow_direct":true,"mirror_direct":false}"#
        let payload = Array(config.utf8)
        // Another process creating the same stream at the same moment makes the server answer
        // "subjects overlap" (10065) once; a second attempt finds the stream.
        var attempt = 0
        creating: while true {
            attempt += 1
            let created = try await requests.send(
                [NATSRequest(subject: "$JS.API.STREAM.CREATE." + stream, payload: payload)],
                operation: "creating \(stream)")
            switch created[0].acknowledgementOfAPI {
            case .ok:
                return
            case .failed(let code, let errorCode, let description):
                if code == 503 {
                    throw BackplaneError.unavailable(
                        "nats: JetStream does not answer (start nats-server with -js; the presence lives in JetStream KV)"
                    )
                }
                if errorCode == 10065 || description.contains("overlap"), attempt < 3 { continue creating }
                guard errorCode == 10058 else {
                    throw BackplaneError.unavailable("nats: cannot create the stream \(stream): \(description)")
                }
                break creating
            }
        }
        let updated = try await requests.send(
            [NATSRequest(subject: "$JS.API.STREAM.UPDATE." + stream, payload: payload)], operation: "updating \(stream)"
        )
        if case .failed(_, _, let description) = updated[0].acknowledgementOfAPI {
            throw BackplaneError.unavailable("nats: the stream \(stream) exists with another layout: \(description)")
        }
    }

    /// The latest entry of each key (`nil` for a key never written or expired), in one batch.
    func get(_ keys: [String]) async throws(BackplaneError) -> [Entry?] {
        let replies = try await requests.send(
            keys.map { NATSRequest(subject: "$JS.API.DIRECT.GET.\(stream).$KV.\(bucket).\($0)") },
            operation: "reading \(bucket)")
        var entries: [Entry?] = []
        entries.reserveCapacity(keys.count)
        for (key, reply) in zip(keys, replies) {
            if reply.status == 404 {
                entries.append(nil)
                continue
            }
            if let status = reply.status { throw Self.failure(status: status, what: "reading \(bucket)") }
            guard let revision = reply.sequence else {
                throw BackplaneError.protocolViolation("nats: a direct get of \(key) answered without Nats-Sequence")
            }
            entries.append(
                Entry(
                    key: key, revision: revision, value: reply.data,
                    isDeleted: reply.operation == "DEL" || reply.operation == "PURGE", created: reply.timestamp ?? 0))
        }
        return entries
    }

    /// Performs every write in one batch, returning what each did (in order).
    ///
    /// A delete removes the key's message from the stream (`STREAM.MSG.DELETE` of its
    /// revision) rather than writing a delete marker, so keys of users and nodes that come and
    /// go leave nothing behind: the bucket holds what is live, not one marker per id ever seen.
    /// A delete with `expected` removes that revision only, so it fails as a conflict once
    /// someone wrote the key again; one without reads the key's revision first (and again if
    /// the key changed in between).
    func write(_ writes: [Write]) async throws(BackplaneError) -> [Outcome] {
        var outcomes = Array(repeating: Outcome.stored(revision: 0), count: writes.count)
        var unconditional: [(index: Int, key: String)] = []
        var batch: [(index: Int, request: NATSRequest, isDelete: Bool)] = []
        for (index, write) in writes.enumerated() {
            switch write {
            case .put(let key, let value, let expected):
                batch.append(
                    (
                        index,
                        NATSRequest(
                            subject: "$KV.\(bucket).\(key)",
                            headers: expected.map { [("Nats-Expected-Last-Subject-Sequence", String($0))] } ?? [],
                            payload: value), false
                    ))
            case .delete(let key, let expected) where markerLinger != nil:
                batch.append(
                    (
                        index,
                        NATSRequest(
                            subject: "$KV.\(bucket).\(key)",
                            headers: [("KV-Operation", "DEL")]
                                + (expected.map { [("Nats-Expected-Last-Subject-Sequence", String($0))] } ?? [])),
                        false
                    ))
            case .delete(_, .some(let revision)):
                batch.append((index, deletion(of: revision), true))
            case .delete(let key, .none):
                unconditional.append((index, key))
            }
        }
        let replies = try await requests.send(batch.map(\.request), operation: "writing \(bucket)")
        var markers: [UInt64] = []
        for (item, reply) in zip(batch, replies) {
            outcomes[item.index] = try outcome(of: reply, isDelete: item.isDelete)
            if case .delete = writes[item.index], case .stored(let revision) = outcomes[item.index] {
                markers.append(revision)
            }
        }
        if let markerLinger, !markers.isEmpty { removeMarkers(markers, after: markerLinger) }
        var pending = unconditional.map(\.key)
        for _ in 0..<NATSPresence.attempts where !pending.isEmpty {
            let present = try await get(pending).compactMap { $0 }
            let deletions = try await requests.send(
                present.map { deletion(of: $0.revision) }, operation: "deleting from \(bucket)")
            pending = []
            for (entry, reply) in zip(present, deletions) where try outcome(of: reply, isDelete: true) == .conflict {
                pending.append(entry.key)
            }
        }
        guard pending.isEmpty else {
            throw BackplaneError.unavailable("nats: \(pending.count) keys of \(bucket) kept changing while deleted")
        }
        return outcomes
    }

    /// Removes the delete markers at `revisions` after `delay` (unless the key was written since,
    /// which removed the marker already), so the bucket does not keep one per key ever deleted.
    private func removeMarkers(_ revisions: [UInt64], after delay: Duration) {
        let requests = self.requests
        let deletions = revisions.map(deletion(of:))
        let stream = self.stream
        MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .milliseconds(delay.wholeMilliseconds)) {
            Task { _ = try? await requests.send(deletions, operation: "removing markers from \(stream)") }
        }
    }

    /// The stream's last sequence: every write acknowledged so far is at or below it.
    func lastSequence() async throws(BackplaneError) -> UInt64 {
        let reply = try await requests.send(
            [NATSRequest(subject: "$JS.API.STREAM.INFO." + stream)], operation: "reading \(stream)'s state")[0]
        let text = String(decoding: reply.data, as: UTF8.self)
        guard reply.status == nil, let range = text.range(of: "\"last_seq\":"),
            let sequence = UInt64(text[range.upperBound...].prefix { $0.isNumber })
        else {
            if let status = reply.status { throw Self.failure(status: status, what: "reading \(stream)'s state") }
            throw BackplaneError.unavailable("nats: no last sequence in \(stream)'s state: \(text.prefix(200))")
        }
        return sequence
    }

    /// The request that removes the message at `revision` from the bucket's stream.
    private func deletion(of revision: UInt64) -> NATSRequest {
        NATSRequest(
            subject: "$JS.API.STREAM.MSG.DELETE." + stream,
            payload: Array(#"{"seq":\#(revision),"no_erase":true}"#.utf8))
    }

    /// What a write's answer says.
    private func outcome(of reply: NATSReply, isDelete: Bool) throws(BackplaneError) -> Outcome {
        if isDelete {
            switch reply.acknowledgementOfAPI {
            case .ok:
                return .stored(revision: 0)
            case .failed(let code, _, let description):
                // The revision is gone: someone wrote the key since (or deleted it).
                if description.contains("no message found") { return .conflict }
                if code == 503 || code == 404 { throw Self.failure(status: code, what: "deleting from \(bucket)") }
                throw BackplaneError.unavailable("nats: deleting from \(bucket) failed: \(description)")
            }
        }
        switch reply.acknowledgement {
        case .stored(let revision):
            return .stored(revision: revision)
        case .failed(let code, let errorCode, let description):
            if errorCode == NATSReply.wrongLastSequence { return .conflict }
            if code == 503 || code == 404 { throw Self.failure(status: code, what: "writing \(bucket)") }
            throw BackplaneError.unavailable("nats: writing \(bucket) failed: \(description)")
        }
    }

    /// Every live key matching `filter` (a key pattern with `*`/`>`), with values unless
    /// `keysOnly`, read with nats.c's KV watcher on a thread of the pool (O(matching keys)).
    func scan(_ filter: String, keysOnly: Bool) async throws(BackplaneError) -> [Entry] {
        let client = self.client
        let bucket = self.bucket
        let result: Result<[Entry], BackplaneError>
        do {
            result = try await NATSClient.blockingCalls.runIfActive {
                Result { () throws(BackplaneError) -> [Entry] in
                    try Self.watch(client: client, bucket: bucket, filter: filter, keysOnly: keysOnly)
                }
            }
        } catch {
            throw BackplaneError.unavailable("nats: cannot scan \(bucket): \(error)")
        }
        return try result.get()
    }

    private static func watch(
        client: NATSClient, bucket: String, filter: String, keysOnly: Bool
    ) throws(BackplaneError) -> [Entry] {
        let milliseconds = client.configuration.commandTimeoutMilliseconds
        // Deletes are skipped below, not by nats.c: with IgnoreDeletes, nats.c 3.4 never says "all
        // initial values delivered" when the last matching entry is a delete marker (the scan timed out).
        return try client.withWatcher(bucket: bucket, keys: filter, ignoreDeletes: false, keysOnly: keysOnly) {
            watcher throws(BackplaneError) -> [Entry] in
            var entries: [Entry] = []
            while true {
                var entry: OpaquePointer?
                let status = kvWatcher_Next(&entry, watcher, milliseconds)
                if status == NATS_TIMEOUT { throw BackplaneError.timedOut(operation: "nats scanning \(bucket)") }
                try NATSClient.check(status, "scanning \(bucket)")
                guard let entry else { return entries }
                defer { kvEntry_Destroy(entry) }
                guard kvEntry_Operation(entry) == kvOp_Put, let key = kvEntry_Key(entry) else { continue }
                entries.append(
                    Entry(
                        key: String(cString: key), revision: kvEntry_Revision(entry),
                        value: NATSClient.value(of: entry), isDeleted: false,
                        created: kvEntry_Created(entry)))
            }
        }
    }

    static func failure(status: Int, what: String) -> BackplaneError {
        switch status {
        case 503: .unavailable("nats: no JetStream answered while \(what) (is the bucket set up and the server up?)")
        case 408: .timedOut(operation: "nats \(what)")
        default: .unavailable("nats: status \(status) while \(what)")
        }
    }
}

extension NATSReply {
    /// A JetStream API answer (stream create, update): fine, or its error.
    enum APIAnswer {
        case ok
        case failed(code: Int, errorCode: Int?, description: String)
    }

    var acknowledgementOfAPI: APIAnswer {
        switch acknowledgement {
        case .stored: .ok
        case .failed(let code, let errorCode, let description):
            // A create/update answer has no "seq" but is fine unless it carries an error.
            if status == nil, !String(decoding: data, as: UTF8.self).contains("\"error\"") {
                .ok
            } else {
                .failed(code: code, errorCode: errorCode, description: description)
            }
        }
    }
}
