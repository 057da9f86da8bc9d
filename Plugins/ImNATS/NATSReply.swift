import CNATS

/// A reply from NATS, copied out of nats.c's message: its status (JetStream answers "not
/// found" or "no responders" as a status line), the JetStream headers KV operations read, and
/// its payload.
struct NATSReply: Sendable {
    /// The status line's code (`404` no such message, `503` no responders, `408` timeout), or
    /// `nil` for an ordinary message.
    var status: Int?
    /// `Nats-Sequence`: the stream sequence of a message read directly (a KV key's revision).
    var sequence: UInt64?
    /// `Nats-Time-Stamp`: when the stream stored it, in nanoseconds since 1970 (server clock).
    var timestamp: Int64?
    /// `KV-Operation` (`DEL`, `PURGE`), absent for a value.
    var operation: String?
    /// The payload.
    var data: [UInt8]

    init(
        status: Int? = nil, sequence: UInt64? = nil, timestamp: Int64? = nil, operation: String? = nil,
        data: [UInt8] = []
    ) {
        self.status = status
        self.sequence = sequence
        self.timestamp = timestamp
        self.operation = operation
        self.data = data
    }

    /// Copies what matters out of `message` (a `natsMsg *`).
    init(_ message: OpaquePointer) {
        func header(_ name: String) -> String? {
            var value: UnsafePointer<CChar>?
            guard natsMsgHeader_Get(message, name, &value) == NATS_OK, let value else { return nil }
            return String(cString: value)
        }
        status = header("Status").flatMap { Int($0.prefix(3)) }
        sequence = header("Nats-Sequence").flatMap { UInt64($0) }
        timestamp = header("Nats-Time-Stamp").flatMap(Self.nanoseconds(rfc3339:))
        operation = header("KV-Operation")
        let length = Int(natsMsg_GetDataLength(message))
        if length > 0, let bytes = natsMsg_GetData(message) {
            data = Array(UnsafeRawBufferPointer(start: bytes, count: length))
        } else {
            data = []
        }
    }

    /// What a JetStream API answer says: its `seq` (a publish acknowledgement) or its error.
    var acknowledgement: Acknowledgement {
        if let status { return .failed(code: status, errorCode: nil, description: "status \(status)") }
        let text = String(decoding: data, as: UTF8.self)
        if text.contains("\"error\"") {
            return .failed(
                code: Self.number(after: "\"code\":", in: text).map(Int.init) ?? 0,
                errorCode: Self.number(after: "\"err_code\":", in: text).map(Int.init),
                description: Self.string(after: "\"description\":\"", in: text) ?? text)
        }
        guard let sequence = Self.number(after: "\"seq\":", in: text) else {
            return .failed(code: 0, errorCode: nil, description: text)
        }
        return .stored(revision: UInt64(sequence))
    }

    /// A JetStream API answer, read.
    enum Acknowledgement: Equatable {
        /// Stored at this stream sequence.
        case stored(revision: UInt64)
        /// Refused: the JetStream error code (`err_code`, 10071 a wrong last sequence) and text.
        case failed(code: Int, errorCode: Int?, description: String)
    }

    /// The JetStream error code of a write whose expected last revision did not match.
    static let wrongLastSequence = 10071

    private static func number(after marker: String, in text: String) -> Int64? {
        guard let range = text.range(of: marker) else { return nil }
        let digits = text[range.upperBound...].prefix { $0.isNumber || $0 == "-" }
        return Int64(digits)
    }

    private static func string(after marker: String, in text: String) -> String? {
        guard let range = text.range(of: marker) else { return nil }
        return String(text[range.upperBound...].prefix { $0 != "\"" })
    }

    /// `2026-11-30T01:40:00.123456789Z` (RFC 3339, UTC as the server writes it) in nanoseconds
    /// since 1970, or `nil` when it is not that shape.
    static func nanoseconds(rfc3339 text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes[4] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes.last == UInt8(ascii: "Z")
        else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            for index in from..<(from + count) {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2), let hour = digits(11, 2),
            let minute = digits(14, 2), let second = digits(17, 2), (1...12).contains(month)
        else { return nil }
        var fraction: Int64 = 0
        if bytes[19] == UInt8(ascii: ".") {
            let count = bytes.count - 21
            guard count > 0, count <= 9, let value = digits(20, count) else { return nil }
            fraction = value
            for _ in count..<9 { fraction *= 10 }
        }
        // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return ((days * 24 + hour) * 60 + minute) * 60_000_000_000 + second * 1_000_000_000 + fraction
    }
}
