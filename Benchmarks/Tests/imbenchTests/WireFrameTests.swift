import NIOCore
import Testing

@testable import imbench

/// The benchmark client's in-place WebSocket parsing and control frames (RFC 6455 §5.2).
@Suite struct WireFrameTests {
    private func header(_ bytes: [UInt8], max: Int = 1 << 20) throws -> WireFrame.Header? {
        try bytes.withUnsafeBytes { raw throws(WireFrame.ParseError) in try WireFrame.header(in: raw, maxPayload: max) }
    }

    @Test func lengthsOfEachForm() throws {
        let short = try header([0x81, 3, 65, 66, 67])
        #expect(short == WireFrame.Header(isFinal: true, opcode: 1, headerLength: 2, payloadLength: 3, mask: nil))
        let medium = try header([0x81, 126, 0x01, 0x00] + [UInt8](repeating: 120, count: 256))
        #expect(medium?.headerLength == 4)
        #expect(medium?.payloadLength == 256)
        let long = try header([0x01, 127, 0, 0, 0, 0, 0, 1, 0, 0] + [UInt8](repeating: 0, count: 65536))
        #expect(long == WireFrame.Header(isFinal: false, opcode: 1, headerLength: 10, payloadLength: 65536, mask: nil))
    }

    @Test func incompleteFramesWait() throws {
        #expect(try header([0x81]) == nil)
        #expect(try header([0x81, 5, 1, 2]) == nil)
        #expect(try header([0x81, 126, 0x01]) == nil)
        #expect(try header([0x81, 127, 0, 0, 0]) == nil)
        #expect(try header([0x81, 0x85, 1, 2]) == nil, "mask key incomplete")
    }

    @Test func maskedFrameCarriesItsKey() throws {
        let frame = try header([0x89, 0x82, 0xA1, 0xB2, 0xC3, 0xD4, 0, 0])
        #expect(
            frame == WireFrame.Header(isFinal: true, opcode: 9, headerLength: 6, payloadLength: 2, mask: 0xA1B2_C3D4))
    }

    @Test func refusesReservedBitsAndOversizedFrames() {
        #expect(throws: WireFrame.ParseError.reservedBits) { try header([0xC1, 0]) }
        #expect(throws: WireFrame.ParseError.tooLarge(200)) { try header([0x81, 126, 0, 200], max: 100) }
        #expect(throws: WireFrame.ParseError.tooLarge(Int.max)) {
            try header([0x81, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], max: 100)
        }
    }

    @Test func controlFramesAreMaskedAndRoundTrip() throws {
        let payload = ByteBuffer(bytes: [0x03, 0xE8, 104, 105])
        var frame = ByteBuffer()
        WireFrame.writeControl(WireFrame.close, payload: payload, mask: 0x0102_0304, into: &frame)
        let bytes = Array(frame.readableBytesView)
        let parsed = try #require(try header(bytes))
        #expect(parsed.opcode == WireFrame.close && parsed.isFinal && parsed.mask == 0x0102_0304)
        let key: [UInt8] = [1, 2, 3, 4]
        let unmasked = bytes[parsed.headerLength...].enumerated().map { $0.element ^ key[$0.offset % 4] }
        #expect(unmasked == [0x03, 0xE8, 104, 105])
    }
}

/// The benchmark's scan of message frames for `seq` and `t`.
@Suite struct FrameScannerTests {
    private func scan(_ text: String) -> (seq: Int, time: UInt64)? {
        Array(text.utf8).withUnsafeBytes { FrameScanner.sequenceAndTime(in: $0) }
    }

    private func kind(_ text: String) -> FrameScanner.Kind {
        Array(text.utf8).withUnsafeBytes { FrameScanner.kind(of: $0) }
    }

    @Test func readsSeqAndTimeOfAServerMessage() throws {
        let frame =
            #"{"type":"message","id":"q1","from":"sequoia","chan":"bench","data":{"seq":4711,"t":123456789},"ts":1}"#
        let found = try #require(scan(frame))
        #expect(found.seq == 4711)
        #expect(found.time == 123_456_789)
        #expect(kind(frame) == .message)
    }

    @Test func findsTimeAnywhereAfterOtherFields() throws {
        let found = try #require(scan(#"{"type":"message","data":{"seq": 7,"pad":"x","t": 99}}"#))
        #expect(found.seq == 7)
        #expect(found.time == 99)
    }

    @Test func missingOrEmptyNumbersAreNil() {
        #expect(scan(#"{"type":"message","data":{"t":5}}"#) == nil)
        #expect(scan(#"{"type":"message","data":{"seq":5}}"#) == nil)
        #expect(scan(#"{"type":"message","data":{"seq":,"t":5}}"#) == nil)
        #expect(scan(#""seq""#) == nil)
    }

    @Test func kindsByPrefix() {
        #expect(kind(#"{"type":"ready","client":"a"}"#) == .ready)
        #expect(kind(#"{"type":"pong"}"#) == .other)
        #expect(kind("") == .other)
    }
}
