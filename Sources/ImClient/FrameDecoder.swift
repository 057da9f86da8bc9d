import Foundation
import ImJSON
import NIOCore

/// A server frame the client acts on, whatever its encoding.
enum DecodedFrame {
    case ready(client: String, node: String)
    case message(IncomingMessage)
    case receipt(IncomingReceipt)
    /// `pong`, or a type this client does not know (ignored, as the protocol asks).
    case other
}

/// Reads server frames: JSON text frames (docs/protocol.md §2) and the compact encoding's
/// MessagePack binary frames (§9). A frame that is neither yields `nil`.
enum FrameDecoder {
    /// The subprotocol of the compact encoding.
    static let compactProtocol = "imserver.v1.msgpack"

    /// A JSON text frame.
    static func json(_ payload: ByteBuffer) -> DecodedFrame? {
        let bytes = Array(payload.readableBytesView)
        guard let fields = try? FlatJSONObject.fields(of: bytes) else { return nil }
        func string(_ name: String) -> String? {
            if case .string(let value)? = fields[name]?.value { return value }
            return nil
        }
        func isTrue(_ name: String) -> Bool {
            guard let member = fields[name], member.value == .other else { return false }
            return bytes[member.range.lowerBound] == UInt8(ascii: "t")
        }
        switch string("type") {
        case "ready":
            return .ready(client: string("client") ?? "", node: string("node") ?? "")
        case "message":
            guard let id = string("id"), let data = fields["data"] else { return nil }
            let channel = string("chan")
            var timestamp: Int64 = 0
            if case .number(let value)? = fields["ts"]?.value, let exact = Int64(exactly: value.rounded()) {
                timestamp = exact
            }
            return .message(
                IncomingMessage(
                    id: id, from: string("from") ?? "", channel: channel,
                    kind: channel != nil ? .channel : (isTrue("broadcast") ? .broadcast : .direct),
                    data: Data(bytes[data.range]), timestamp: timestamp, wantsReceipt: isTrue("receipt")))
        case "receipt":
            guard let id = string("id"), let to = string("to"),
                let status = string("status").flatMap(IncomingReceipt.Status.init(rawValue:))
            else { return nil }
            return .receipt(IncomingReceipt(id: id, to: to, status: status))
        default:
            return .other
        }
    }

    /// A MessagePack binary frame: an array whose first element is the frame's type
    /// (0 ready, 1 message, 2 receipt, 3 pong).
    static func messagePack(_ payload: ByteBuffer) -> DecodedFrame? {
        var reader = MessagePackReader(payload)
        guard let count = reader.arrayHeader(), count >= 1, let type = reader.integer() else { return nil }
        switch type {
        case 0:
            guard count >= 3, let client = reader.string(), let node = reader.string() else { return nil }
            return .ready(client: client, node: node)
        case 1:
            guard count >= 7, let id = reader.string(), let from = reader.string(),
                let channel = reader.optionalString(),
                let timestamp = reader.integer(), let flags = reader.integer(), let data = reader.stringBytes()
            else { return nil }
            return .message(
                IncomingMessage(
                    id: id, from: from, channel: channel,
                    kind: channel != nil ? .channel : (flags & 2 != 0 ? .broadcast : .direct),
                    data: Data(data.readableBytesView), timestamp: Int64(clamping: timestamp),
                    wantsReceipt: flags & 1 != 0))
        case 2:
            guard count >= 4, let id = reader.string(), let to = reader.string(),
                let status = reader.string().flatMap(IncomingReceipt.Status.init(rawValue:))
            else { return nil }
            return .receipt(IncomingReceipt(id: id, to: to, status: status))
        default:
            return .other
        }
    }
}

/// Reads the MessagePack types of the compact encoding: arrays, non-negative integers, strings
/// and nil. Anything else (or a value cut short) reads as `nil`.
struct MessagePackReader {
    private var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    mutating func arrayHeader() -> Int? {
        guard let first = buffer.readInteger(as: UInt8.self) else { return nil }
        switch first {
        case 0x90...0x9F: return Int(first & 0x0F)
        case 0xDC: return buffer.readInteger(as: UInt16.self).map(Int.init)
        case 0xDD: return buffer.readInteger(as: UInt32.self).map(Int.init)
        default: return nil
        }
    }

    mutating func integer() -> UInt64? {
        guard let first = buffer.readInteger(as: UInt8.self) else { return nil }
        switch first {
        case 0x00...0x7F: return UInt64(first)
        case 0xCC: return buffer.readInteger(as: UInt8.self).map(UInt64.init)
        case 0xCD: return buffer.readInteger(as: UInt16.self).map(UInt64.init)
        case 0xCE: return buffer.readInteger(as: UInt32.self).map(UInt64.init)
        case 0xCF: return buffer.readInteger(as: UInt64.self)
        default: return nil
        }
    }

    /// A string's bytes, without copying.
    mutating func stringBytes() -> ByteBuffer? {
        guard let first = buffer.readInteger(as: UInt8.self) else { return nil }
        let length: Int?
        switch first {
        case 0xA0...0xBF: length = Int(first & 0x1F)
        case 0xD9: length = buffer.readInteger(as: UInt8.self).map(Int.init)
        case 0xDA: length = buffer.readInteger(as: UInt16.self).map(Int.init)
        case 0xDB: length = buffer.readInteger(as: UInt32.self).map(Int.init)
        default: length = nil
        }
        guard let length else { return nil }
        return buffer.readSlice(length: length)
    }

    mutating func string() -> String? {
        stringBytes().map { String(buffer: $0) }
    }

    /// A string, or nil (`.some(nil)`); `nil` when it is neither.
    mutating func optionalString() -> String?? {
        if buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0xC0 {
            buffer.moveReaderIndex(forwardBy: 1)
            return .some(nil)
        }
        return string().map { .some($0) }
    }
}
