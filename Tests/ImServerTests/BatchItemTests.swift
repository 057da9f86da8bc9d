import ImBackplane
import ImCore
import ImHelper
import ImTesting
import NIOCore
import Testing

@testable import ImServerAPI

@Suite("Batch items: the common path reads what the general one does")
struct BatchItemTests {
    /// Items every back-end sends: each must take the common path, to the general path's message.
    @Test(
        "plain items take the common path",
        arguments: [
            #"{"from":"svc","channel":"room","data":{"text":"hello"}}"#,
            #"{ "channel" : "room" , "data" : 1 , "from" : "svc" }"#,
            #"{"from":"bob","to":["alice","zed"],"data":{"n":1},"receipt":true}"#,
            #"{"from":"bob","to":["alice"],"data":null,"receipt":null,"channel":null}"#,
            #"{"broadcast":true,"data":[3]}"#,
            #"{"broadcast":true,"from":null,"data":"x"}"#,
            #"{"broadcast":true,"from":"ops","data":"x","to":null}"#,
            #"{"broadcast":false,"from":"bob","channel":"é","data":"x"}"#,
        ])
    func plainItems(_ item: String) throws {
        let (common, general) = try Self.read(item)
        let message = try #require(common, "the common path declined \(item)")
        #expect(Self.same(message, try general.get()), "\(item)")
    }

    /// Random items built from the members a batch item may have, good and bad values, unknown
    /// and escaped names, repeats and whitespace: wherever the common path gives a message, the
    /// general path gives the same one.
    @Test("random items: the common path agrees with the general one or declines")
    func randomItems() throws {
        var taken = 0
        var declinedValid = 0
        let cases = try FuzzBudget(seed: 0xBA7C4, iterations: 4000).run { index, random in
            let item = Self.randomItem(using: &random)
            let (common, general) = try Self.read(item)
            if let common {
                taken += 1
                let message = try #require(try? general.get(), "case \(index): the general path refused \(item)")
                #expect(Self.same(common, message), "case \(index): \(item)")
            } else if case .success = general {
                declinedValid += 1
            }
        }
        // The generator makes both kinds often enough for the comparison to mean something.
        #expect(taken > cases / 20, "\(taken) of \(cases) items took the common path")
        #expect(declinedValid > 0, "no valid item needed the general path")
    }

    /// The item `item` read both ways, as the batch route reads it.
    private static func read(_ item: String) throws -> (OutgoingMessage?, Result<OutgoingMessage, APIError>) {
        let body = try RequestBody(ByteBuffer(string: #"{"messages":["# + item + "]}"))
        let range = try #require(try body.elements("messages").first)
        let read = BatchItem.read(in: body, at: range.lowerBound)
        if let read { #expect(read.end == range.upperBound, "where \(item) ends") }
        let common = read?.0
        let general = Result { () throws(APIError) -> OutgoingMessage in
            try OutgoingMessage.batchItem(RequestBody(itemOf: body, range: range, element: ("messages", 0)))
        }
        return (common, general)
    }

    private static func same(_ a: OutgoingMessage, _ b: OutgoingMessage) -> Bool {
        a.data == b.data && a.sender == b.sender && a.target == b.target
    }

    private static let names = [
        #""from""#, #""to""#, #""channel""#, #""broadcast""#, #""data""#, #""receipt""#, #""extra""#,
        #""\u0066rom""#, #""chan\u006eel""#,
    ]
    private static let values = [
        #""bob""#, #""alice""#, #""""#, #""b\u006fb""#, #""é""#, #""a b""#, #""room""#, "null", "true", "false",
        "0", "-1.5e3", "[]", #"["alice"]"#, #"["alice","zed"]"#, #"["alice",7]"#, #"[""]"#, #"["\u0061"]"#,
        #"{"k":"}"}"#, #"{"text":"hello, \"quoted\""}"#, #""\\""#,
    ]

    /// An item of two to six members: mostly the ones a message needs, with plausible values.
    private static func randomItem(using random: inout SeededGenerator) -> String {
        let kind = Int.random(in: 0..<3, using: &random)
        var members: [(String, String)] = [(#""data""#, values.randomElement(using: &random) ?? "1")]
        switch kind {
        case 0: members.append((#""channel""#, [#""room""#, #""é""#, "7", "null"].randomElement(using: &random) ?? ""))
        case 1:
            members.append(
                (#""to""#, [#"["alice"]"#, #"["alice","zed"]"#, "[]", #""alice""#].randomElement(using: &random) ?? ""))
        default: members.append((#""broadcast""#, ["true", "false", "1"].randomElement(using: &random) ?? ""))
        }
        if Int.random(in: 0..<4, using: &random) > 0 {
            let sender = [#""bob""#, #""bob""#, #""""#, "null", #""b\u006fb""#].randomElement(using: &random) ?? ""
            members.append((#""from""#, sender))
        }
        for _ in 0..<([0, 0, 1, 2].randomElement(using: &random) ?? 0) {
            let name = names.randomElement(using: &random) ?? #""x""#
            members.append((name, values.randomElement(using: &random) ?? "1"))
        }
        members.shuffle(using: &random)
        let space = [" ", "", "\n", "\t"]
        return "{"
            + members.map { name, value in
                let pad = space.randomElement(using: &random) ?? ""
                return pad + name + pad + ":" + pad + value
            }.joined(separator: ",") + "}"
    }
}
