@testable import ImJSON
@testable import ImCore
import Testing

@Suite("Reading a request body's members where they lie")
struct FlatJSONObjectRangeTests {
    private static let text =
        #" {"from":"bob", "to" : ["a","b\"]c", "\u00e9"], "data": {"k":[1,{"x":"}"}],"e":""}, "n":null} "#
    private let bytes = Array(Self.text.utf8)

    private func slice(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    @Test("each member's range holds its value's text exactly")
    func ranges() throws {
        let fields = try FlatJSONObject.fields(of: bytes)
        #expect(fields["from"].map { slice($0.range) } == #""bob""#)
        #expect(fields["to"].map { slice($0.range) } == #"["a","b\"]c", "\u00e9"]"#)
        #expect(fields["data"].map { slice($0.range) } == #"{"k":[1,{"x":"}"}],"e":""}"#)
        #expect(fields["n"]?.value == .null)
        #expect(fields["from"]?.value == .string("bob"))
    }

    @Test("an array member's elements, and the strings among them")
    func elements() throws {
        let fields = try FlatJSONObject.fields(of: bytes)
        let to = try #require(fields["to"])
        let elements = try #require(try FlatJSONObject.elements(ofArrayIn: bytes, to.range))
        #expect(try elements.map { try FlatJSONObject.string(in: bytes, $0) } == ["a", "b\"]c", "é"])
        let data = try #require(fields["data"])
        #expect(try FlatJSONObject.elements(ofArrayIn: bytes, data.range) == nil, "an object is not an array")
        #expect(try FlatJSONObject.string(in: bytes, data.range) == nil)
        let inner = try FlatJSONObject.fields(of: bytes, in: data.range, validated: true)
        #expect(inner["e"]?.value == .string(""))
        #expect(inner["k"].map { slice($0.range) } == #"[1,{"x":"}"}]"#)
    }

    @Test(
        "stepping over checked JSON by brackets and quotes ends where the validator ends",
        arguments: [
            #"{"a":[1,2,{"b":"]}"}],"c":"\\"}"#, #"[]"#, #"[[[]],{}]"#, #""x\"y\\""#, "-12.5e+3", "true", "null",
            #"{"s":"{[,"}"#, #"[" ",1 , 2]"#, "0",
        ])
    func validatedSkimAgrees(_ value: String) {
        for tail in ["", ",1", " ]", "}"] {
            let bytes = Array((value + tail).utf8)
            let checked = bytes.withUnsafeBytes { JSONValidator.end(ofValueAt: 0, in: $0) }
            let skimmed = bytes.withUnsafeBytes { JSONValidator.end(ofValidatedValueAt: 0, in: $0) }
            #expect(checked == value.utf8.count, "\(value + tail)")
            #expect(skimmed == checked, "\(value + tail)")
        }
    }

    @Test("values of a range not read before are still checked")
    func unvalidatedRangeIsChecked() {
        let bad = Array(#"{"a":[1,}"#.utf8)
        #expect(throws: FlatJSONObject.Malformed.self) { try FlatJSONObject.fields(of: bad) }
        let item = Array(#"[{"a":tru}]"#.utf8)
        #expect(throws: FlatJSONObject.Malformed.self) { try FlatJSONObject.fields(of: item, in: 1..<10) }
    }

    @Test("more members than a scan looks up: every one found, a duplicate past the limit refused")
    func manyMembers() throws {
        let count = 3 * FlatJSONObject.Members.linearLimit
        let object = "{" + (0..<count).map { #""m\#($0)":\#($0)"# }.joined(separator: ",") + "}"
        let fields = try FlatJSONObject.fields(of: Array(object.utf8))
        #expect(fields.count == count)
        for number in 0..<count { #expect(fields["m\(number)"]?.value == .number(Double(number))) }
        #expect(fields["m\(count)"] == nil)
        let duplicate = "{" + (0..<count).map { #""m\#($0)":1"# }.joined(separator: ",") + #","m2":2}"#
        #expect(throws: FlatJSONObject.Malformed.self) { try FlatJSONObject.fields(of: Array(duplicate.utf8)) }
    }

    @Test("an object of 100,000 members is read in linear time, not checked pair by pair")
    func hugeObject() throws {
        let object = "{" + (0..<100_000).map { #""k\#($0)":0"# }.joined(separator: ",") + "}"
        let started = ContinuousClock.now
        let fields = try FlatJSONObject.fields(of: Array(object.utf8))
        #expect(fields.count == 100_000)
        // A pairwise duplicate check would compare five billion pairs; hashed, this takes
        // well under a second even in a debug build.
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("an element cursor finds what elements(ofArrayIn:) lists, each element read by its reader or skipped")
    func elementCursor() throws {
        let arrays = [
            "[]", "[ 1 ]", #"[{"a":"]"},"x\"]",[1,[2]], {} ,null,{"b":{"c":[]}}]"#, #" [ {"k":1} , {"k":2} ] "#,
        ]
        for array in arrays {
            let bytes = Array(#"{"list":"#.utf8) + Array(array.utf8) + Array("}".utf8)
            let member = try #require(try FlatJSONObject.fields(of: bytes)["list"])
            let expected = try #require(try FlatJSONObject.elements(ofArrayIn: bytes, member.range))
            for readsObjects in [false, true] {
                var cursor = try #require(FlatJSONObject.ElementCursor(arrayIn: bytes, member.range))
                var found: [Range<Int>] = []
                while let start = cursor.next() {
                    if readsObjects,
                        let end = FlatJSONObject.forEachMember(
                            ofValidatedObjectAt: start, in: bytes, { _, _, _ in true })
                    {
                        cursor.finishElement(endingAt: end)
                        found.append(start..<end)
                    } else {
                        let skipped = cursor.skipElement()
                        found.append(try #require(skipped))
                    }
                }
                #expect(found == expected, "\(array)")
                #expect(cursor.isComplete, "\(array)")
            }
        }
        let object = Array(#"{"list":{"a":[1]}}"#.utf8)
        let member = try #require(try FlatJSONObject.fields(of: object)["list"])
        #expect(FlatJSONObject.ElementCursor(arrayIn: object, member.range) == nil, "an object is not an array")
        #expect(
            FlatJSONObject.forEachMember(ofValidatedObjectAt: member.range.lowerBound + 5, in: object) { _, _, _ in true
            } == nil)
    }
}
