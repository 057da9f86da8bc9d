@testable import ImJSON
import Foundation
import ImHelper
import ImTesting
import NIOCore
import Testing

/// The hand-written validator behind ``JSONPayload/init(validating:)``, checked case by case
/// and against Foundation's parser on seeded random mutations.
@Suite("JSON validation")
struct JSONValidatorTests {
    private static func accepts(_ bytes: [UInt8]) -> Bool {
        (try? JSONPayload(validating: ByteBuffer(bytes: bytes))) != nil
    }

    private static func foundationAccepts(_ bytes: [UInt8]) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
    }

    @Test(
        "numbers follow the RFC 8259 grammar",
        arguments: [
            ("0", true), ("-0", true), ("1.5", true), ("1e5", true), ("1E+5", true), ("-1.25e-3", true),
            ("01", false), ("1.", false), (".5", false), ("1e", false), ("-", false), ("+1", false), ("1.e5", false),
            ("0x10", false), ("Infinity", false),
        ])
    func numbers(_ text: String, _ valid: Bool) {
        #expect(Self.accepts(Array(text.utf8)) == valid)
    }

    @Test(
        "strings: escapes checked, control characters refused",
        arguments: [
            (#""a\"b""#, true), (#""\\ \/ \b \f \n \r \t""#, true), (#""\u00e9\uD83D\uDE00""#, true),
            (#""\x""#, false), (#""\u12""#, false), (#""\u12G4""#, false), ("\"tab\there\"", false),
            ("\"nl\n\"", false),
        ])
    func strings(_ text: String, _ valid: Bool) {
        #expect(Self.accepts(Array(text.utf8)) == valid)
    }

    @Test(
        "UTF-8 inside strings: overlong forms, surrogates and truncated sequences are refused",
        arguments: [
            ([0xC3, 0xA9], true), ([0xF0, 0x9F, 0x8C, 0x8D], true), ([0xE2, 0x82, 0xAC], true),
            ([0xC0, 0xAF], false), ([0xE0, 0x80, 0xAF], false), ([0xED, 0xA0, 0x80], false),
            ([0xF4, 0x90, 0x80, 0x80], false),
            ([0xF8, 0x88, 0x80, 0x80, 0x80], false), ([0xC3], false), ([0xE2, 0x82], false), ([0x80], false),
        ] as [([UInt8], Bool)])
    func utf8(_ scalar: [UInt8], _ valid: Bool) {
        #expect(Self.accepts([UInt8(ascii: "\"")] + scalar + [UInt8(ascii: "\"")]) == valid)
    }

    @Test("nesting is limited to 512 levels")
    func nesting() {
        let deep = { (levels: Int) in
            Array(String(repeating: "[", count: levels).utf8) + Array(String(repeating: "]", count: levels).utf8)
        }
        #expect(Self.accepts(deep(512)))
        #expect(!Self.accepts(deep(513)))
        #expect(!Self.accepts(deep(100_000)))
    }

    @Test(
        "trailing commas are refused (JSON.parse refuses them), huge exponents are grammatical",
        arguments: [
            ("[1,2,]", false), (#"{"a":1,}"#, false), ("[,]", false), ("1e400", true), ("-2E-999", true),
        ])
    func edges(_ text: String, _ valid: Bool) {
        #expect(Self.accepts(Array(text.utf8)) == valid)
    }

    /// Where Foundation departs from RFC 8259: it accepts a trailing comma, and refuses a
    /// number that overflows a Double.
    private static func isKnownFoundationDeparture(_ text: String, validatorAccepts: Bool) -> Bool {
        if validatorAccepts {
            return text.contains(/[eE][+-]?[0-9]{3,}/) || text.contains(/[0-9]{20,}/)
        }
        return text.contains(/,\s*[\]}]/)
    }

    /// Strings are stepped over eight bytes at a time where no byte needs a look: every byte
    /// that does (a quote, an escape, a control character, a multi-byte or invalid UTF-8 byte)
    /// is put at every position of strings of every length around the word size, and the
    /// validator must agree with Foundation, and the validated-value stepper find the same end.
    @Test("strings: every special byte at every position of strings up to 40 bytes long")
    func specialBytesAtEveryPosition() throws {
        let specials: [[UInt8]] = [
            Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\n"#.utf8), Array(#"\u00e9"#.utf8), [0x22], [0x5C],
            [0x01], [0x1F], [0x7F], Array("é".utf8), Array("€".utf8), Array("𝄞".utf8), [0xC3], [0xFF],
            [0xED, 0xA0, 0x80],
        ]
        var disagreements: [String] = []
        for length in 0...40 {
            for position in 0...length {
                for special in specials {
                    var content = Array(repeating: UInt8(ascii: "a"), count: length)
                    content.insert(contentsOf: special, at: position)
                    let document = [UInt8(ascii: "[")] + [0x22] + content + [0x22] + Array(#","x"]"#.utf8)
                    let accepted = Self.accepts(document)
                    if accepted != Self.foundationAccepts(document) {
                        disagreements.append("\(length) \(position) \(special): validator \(accepted)")
                    }
                    guard accepted else { continue }
                    let ends = document.withUnsafeBytes {
                        (JSONValidator.end(ofValueAt: 1, in: $0), JSONValidator.end(ofValidatedValueAt: 1, in: $0))
                    }
                    #expect(ends.0 == ends.1, "\(length) \(position) \(special)")
                }
            }
        }
        #expect(disagreements.isEmpty, "first: \(disagreements.prefix(5))")
    }

    @Test("agrees with Foundation's parser on 20,000 seeded mutations of valid documents")
    func agreesWithFoundation() {
        let seeds = [
            #"{"seq":12,"t":1732000000000,"text":"héllo","list":[1,2.5,-3e2,true,false,null],"o":{}}"#,
            #"[{"a":"b"},["c",[]],"d\"e",0,-0.0]"#,
            #""plain string""#,
            "123.456e-7",
        ]
        // No backslash: lone-surrogate escapes are grammatical JSON that Foundation refuses.
        let alphabet = Array(#"{}[]:,"0123456789.-+eEtrufalsn x"#.utf8) + [0x09, 0x0A, 0xC3, 0xA9, 0xFF]
        var random = SeededGenerator(seed: 0x1507_2026)
        var disagreements: [String] = []
        for round in 0..<20_000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = alphabet.randomElement(using: &random) ?? 0
                case 1: bytes.insert(alphabet.randomElement(using: &random) ?? 0, at: position)
                default: if bytes.count > 1 { bytes.remove(at: position) }
                }
            }
            let accepted = Self.accepts(bytes)
            guard accepted != Self.foundationAccepts(bytes) else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            if !Self.isKnownFoundationDeparture(text, validatorAccepts: accepted) { disagreements.append(text) }
        }
        #expect(disagreements.isEmpty, "first: \(disagreements.prefix(5))")
    }
}
