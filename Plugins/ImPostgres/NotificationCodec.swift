import Foundation
import NIOCore

/// How bus messages travel in `NOTIFY`: which LISTEN channel a subject uses, and the payload.
///
/// - **Channels.** A PostgreSQL identifier stops at 63 bytes, so every subject is hashed (64-bit
///   FNV-1a) into `<schema>_<16 hex digits>`. Two subjects may share a channel; the payload
///   carries the full subject and a listener delivers only the subjects it subscribed, so a
///   collision never misdelivers.
/// - **Payloads** (text, under 8,000 bytes): `<sender>.<sequence>|<kind><subject length>:<subject><body>`.
///   The sender's random id and a counter make every payload of a transaction unique
///   (PostgreSQL folds identical notifications of one transaction into one). `kind` is `t` (the
///   body as it is: UTF-8 without NUL), `b` (base64) or `r` (the body is a row id of the
///   `payloads` table, for bodies too large to notify).
enum NotificationCodec {
    /// The largest payload sent inline (PostgreSQL's limit is 8,000 bytes).
    static let inlineLimit = 7_900

    /// The LISTEN channel of `subject`.
    static func channel(of subject: String, schema: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in subject.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return schema + "_" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// What a notification holds.
    enum Body: Equatable {
        case inline(ByteBuffer)
        case row(Int64)
    }

    /// The payload for `body` on `subject`, or `nil` when it must go through the table.
    static func inlinePayload(_ body: ByteBuffer, subject: String, tag: String) -> String? {
        let bytes = body.readableBytesView
        let isText = !bytes.contains(0) && String(validating: bytes, as: UTF8.self) != nil
        let text = isText ? String(decoding: bytes, as: UTF8.self) : Data(bytes).base64EncodedString()
        let payload = tag + "|" + (isText ? "t" : "b") + "\(subject.utf8.count):" + subject + text
        return payload.utf8.count <= inlineLimit ? payload : nil
    }

    /// The payload pointing at row `id` of the payloads table.
    static func rowPayload(_ id: Int64, subject: String, tag: String) -> String {
        tag + "|r\(subject.utf8.count):" + subject + String(id)
    }

    /// The subject and body of a payload, or `nil` for one this codec did not write (anyone
    /// who may connect to the database can `NOTIFY` a channel: nothing in it may trap).
    static func decode(_ payload: String) -> (subject: String, body: Body)? {
        let bytes = Array(payload.utf8)
        guard let bar = bytes.firstIndex(of: UInt8(ascii: "|")), bar + 1 < bytes.count else { return nil }
        let kind = bytes[bar + 1]
        guard let colon = bytes[(bar + 2)...].firstIndex(of: UInt8(ascii: ":")),
            let length = Int(String(decoding: bytes[(bar + 2)..<colon], as: UTF8.self)),
            length >= 0, length <= bytes.count - colon - 1
        else { return nil }
        let subjectEnd = colon + 1 + length
        guard let subject = String(validating: bytes[(colon + 1)..<subjectEnd], as: UTF8.self) else { return nil }
        let rest = bytes[subjectEnd...]
        switch kind {
        case UInt8(ascii: "t"):
            return (subject, .inline(ByteBuffer(bytes: rest)))
        case UInt8(ascii: "b"):
            guard let data = Data(base64Encoded: Data(rest)) else { return nil }
            return (subject, .inline(ByteBuffer(bytes: data)))
        case UInt8(ascii: "r"):
            guard let id = Int64(String(decoding: rest, as: UTF8.self)) else { return nil }
            return (subject, .row(id))
        default:
            return nil
        }
    }
}
