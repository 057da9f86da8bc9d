import NIOCore
import NIOWebSocket

/// Checks a client's WebSocket frames against RFC 6455 and joins fragmented messages.
///
/// NIO's frame decoder checks the frame layout (lengths, control frames short and final); this
/// checks what it leaves to the server (§5.1 masking, §5.2 reserved bits and opcodes, §5.4
/// fragmentation, §5.5.1 close payloads, §8.1 UTF-8 in text) and bounds a fragmented message's
/// size and fragment count. It replaces NIO's frame aggregator, so a connection carries one
/// handler instead of two. Holds nothing between messages.
struct ClientFrameAssembler {
    /// What a frame amounts to once checked.
    enum Output: Equatable {
        /// A complete text message (valid UTF-8), unmasked.
        case text(ByteBuffer)
        /// A complete binary message.
        case binary
        /// A ping with its (unmasked) application data.
        case ping(ByteBuffer)
        /// A pong.
        case pong
        /// A close frame: the peer's status code, if it sent one (a valid code).
        case close(code: UInt16?)
        /// A fragment of a message still being assembled.
        case partial
    }

    /// A frame the RFC or the limits forbid: the connection is closed with ``code``.
    struct Violation: Error, Equatable, CustomStringConvertible {
        /// The close code to answer with.
        var code: CloseCode
        /// The close reason.
        var reason: String

        var description: String { "\(code.rawValue) \(reason)" }
    }

    /// The largest message after joining its fragments.
    let maximumMessageSize: Int
    /// The most fragments one message may arrive in.
    let maximumFragments: Int
    private var partial: ByteBuffer?
    private var partialIsText = false
    private var fragments = 0

    /// An assembler for messages of at most `maximumMessageSize` bytes in at most
    /// `maximumFragments` frames.
    init(maximumMessageSize: Int, maximumFragments: Int = 64) {
        self.maximumMessageSize = maximumMessageSize
        self.maximumFragments = maximumFragments
    }

    /// Checks `frame` and returns what it completes.
    mutating func accept(_ frame: WebSocketFrame) throws(Violation) -> Output {
        guard frame.maskKey != nil else {
            throw Violation(code: .protocolError, reason: "client frames must be masked")
        }
        guard !frame.rsv1 && !frame.rsv2 && !frame.rsv3 else {
            throw Violation(code: .protocolError, reason: "reserved bits set (no extension was negotiated)")
        }
        switch frame.opcode {
        case .text, .binary:
            guard partial == nil else {
                throw Violation(code: .protocolError, reason: "a new message started before the last one ended")
            }
            return try start(frame, isText: frame.opcode == .text)
        case .continuation:
            guard partial != nil else {
                throw Violation(code: .protocolError, reason: "continuation frame without a message to continue")
            }
            return try `continue`(frame)
        case .ping:
            return .ping(frame.unmaskedData)
        case .pong:
            return .pong
        case .connectionClose:
            return .close(code: try Self.closeCode(of: frame.unmaskedData))
        default:
            throw Violation(code: .protocolError, reason: "reserved opcode \(frame.opcode)")
        }
    }

    private mutating func start(_ frame: WebSocketFrame, isText: Bool) throws(Violation) -> Output {
        guard isText else { return .binary }
        let data = frame.unmaskedData
        if frame.fin { return try Self.complete(data) }
        guard data.readableBytes <= maximumMessageSize else { throw Self.tooBig }
        partial = data
        partialIsText = isText
        fragments = 1
        return .partial
    }

    private mutating func `continue`(_ frame: WebSocketFrame) throws(Violation) -> Output {
        guard var message = partial else { return .partial }
        partial = nil  // `message` holds the only reference: appending does not copy.
        fragments += 1
        var data = frame.unmaskedData
        guard fragments <= maximumFragments, message.readableBytes + data.readableBytes <= maximumMessageSize else {
            throw Self.tooBig
        }
        message.writeBuffer(&data)
        guard frame.fin else {
            partial = message
            return .partial
        }
        fragments = 0
        return try Self.complete(message)
    }

    private static var tooBig: Violation { Violation(code: .messageTooBig, reason: CloseCode.messageTooBig.reason) }

    private static func complete(_ text: ByteBuffer) throws(Violation) -> Output {
        guard text.readableBytesView.isValidUTF8 else {
            throw Violation(code: .invalidPayload, reason: "text frame is not valid UTF-8")
        }
        return .text(text)
    }

    /// The status code of a close frame's payload (RFC 6455 §5.5.1, §7.4): none, or a code a
    /// peer may send followed by UTF-8 text.
    static func closeCode(of payload: ByteBuffer) throws(Violation) -> UInt16? {
        var payload = payload
        guard payload.readableBytes != 0 else { return nil }
        guard let code = payload.readInteger(as: UInt16.self) else {
            throw Violation(code: .protocolError, reason: "close frame payload of one byte")
        }
        guard isValidPeerCloseCode(code) else {
            throw Violation(code: .protocolError, reason: "invalid close code \(code)")
        }
        guard payload.readableBytesView.isValidUTF8 else {
            throw Violation(code: .invalidPayload, reason: "close reason is not valid UTF-8")
        }
        return code
    }

    /// Whether a peer may send `code` in a close frame: the codes RFC 6455 and IANA define for
    /// use on the wire (1000–1003, 1007–1014) and the ranges for libraries and applications
    /// (3000–4999). 1004–1006 and 1015 are reserved and must never be sent.
    static func isValidPeerCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }
}

extension Collection<UInt8> {
    /// Whether the bytes are well-formed UTF-8.
    fileprivate var isValidUTF8: Bool {
        var decoder = UTF8()
        var iterator = makeIterator()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
