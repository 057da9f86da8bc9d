import ImBackplane
import NIOCore

/// The bodies of the ``BusConformance`` checks about the bus's lifecycle: calls before `run()`
/// and a backend restart.
extension BusHarness {
    /// Before `run()`: each call must return or throw a `BackplaneError` within the timeout.
    func callsBeforeRun() async throws {
        let room = subject("room")
        let bus = self.bus
        _ = try await beforeRun("publish(\"early\", to: room)", within: timeout) {
            try await bus.publish(ByteBuffer(string: "early"), to: room)
        }
        guard
            let subscriber = try await beforeRun(
                "makeSubscriber()", within: timeout, { try await bus.makeSubscriber() })
        else { return }
        let inbox = keep(subscriber, named: "subscriber made before run()")
        early.withLock { $0 = inbox }
        _ = try await beforeRun("subscribe([room])", within: timeout) { try await subscriber.subscribe([room]) }
    }

    /// Once `run()` is up: the subscriber made before it receives, and new ones work.
    func callsAfterRun() async throws {
        let room = subject("room")
        if let early = early.withLock({ $0 }) {
            _ = try await publishUntilReceived(
                by: early, on: room, within: timeout,
                "it subscribed to room before run() (if subscribe threw, the subscriber keeps the subject and subscribes it once connected)"
            )
        }
        let later = try await inbox("subscriber made once run() was up", to: [room])
        try await publish("marker", to: room)
        try await later.expect("marker", on: room, "subscribed once run() was up")
    }

    func survivesBackendRestart() async throws {
        guard let restartBackend else { return }
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        try await publish("before-restart", to: room)
        try await subscriber.expect("before-restart", on: room, "subscribed, before the restart")
        do {
            try await restartBackend()
        } catch {
            throw failure("restartBackend threw \(error): the backend could not be restarted")
        }
        _ = try await publishUntilReceived(
            by: subscriber, on: room, within: reconnectTimeout,
            "it subscribed before the backend restarted and must receive messages published after the bus reconnected, without subscribing again"
        )
        try await publish("marker", to: room)
        while true {
            let message = try await subscriber.nextMessage("the marker was published once messages flowed again")
            let text = String(buffer: message.payload)
            if message.subject == room && text == "marker" { break }
            guard message.subject == room, text.hasPrefix("probe-") else {
                throw failure("subscriber: received \(describe(message)) while waiting for the marker")
            }
        }
        let lobby = subject("lobby")
        let newcomer = try await inbox("subscriber made after the restart", to: [lobby])
        try await publish("hello", to: lobby)
        try await newcomer.expect("hello", on: lobby, "subscribed after the bus reconnected")
        let up = try await poll(for: reconnectTimeout) { bus.health.isUp ? true : nil }
        guard up != nil else {
            throw failure(
                "health is still \"\(bus.health)\" \(reconnectTimeout) after the restart, although messages flow again")
        }
    }

    /// Publishes `probe-1`, `probe-2`, … to `subject` (failures with `BackplaneError` allowed)
    /// until `inbox` receives one, for at most `bound`; returns how many were published.
    func publishUntilReceived(by inbox: Inbox, on subject: String, within bound: Duration, _ why: String)
        async throws -> Int
    {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: bound)
        var number = 0
        var lastError: String?
        while clock.now < deadline {
            number += 1
            let text = "probe-\(number)"
            _ = try await tolerating("publish(\"\(text)\", to: \(subject))", lastError: &lastError) {
                try await bus.publish(ByteBuffer(string: text), to: subject)
            }
            switch await inbox.next(timeout: .milliseconds(250)) {
            case .nothing:
                continue
            case .ended:
                throw failure("\(inbox.name): messages finished while waiting for a message on \(subject) (\(why))")
            case .message(let message):
                guard message.subject == subject, String(buffer: message.payload).hasPrefix("probe-") else {
                    throw failure(
                        "\(inbox.name): received \(describe(message)) while waiting for a probe on \(subject)")
                }
                return number
            }
        }
        let cause = lastError.map { "; last failure: \($0)" } ?? ""
        throw failure(
            "\(inbox.name): none of \(number) messages published to \(subject) over \(bound) arrived (\(why))\(cause)")
    }
}
