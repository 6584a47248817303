import Document
import Testing

struct JSONWriterTests {
    @Test func writesCompactText() {
        let value: JSON = ["name": "a/b", "list": [1, .number("-2.50e3"), true, nil, [:], []], "empty": ""]
        #expect(JSONWriter.string(value) == #"{"name":"a/b","list":[1,-2.50e3,true,null,{},[]],"empty":""}"#)
    }

    @Test func escapesQuotesBackslashesAndControlCharacters() {
        let value: JSON = .string("q\" b\\ \u{8}\u{c}\n\r\t \u{0}\u{1f} é😀 </> \u{7f}")
        #expect(JSONWriter.string(value) == #""q\" b\\ \b\f\n\r\t \u0000\u001f é😀 </> "# + "\u{7f}\"")
    }

    @Test func writesIndentedTextLikeKubectl() {
        let value: JSON = ["a": 1, "b": ["x", [:], []], "c": ["d": nil]]
        let expected = """
            {
                "a": 1,
                "b": [
                    "x",
                    {},
                    []
                ],
                "c": {
                    "d": null
                }
            }
            """
        #expect(JSONWriter.string(value, indent: 4) == expected)
        #expect(JSONWriter.string([], indent: 2) == "[]")
        #expect(JSONWriter.string("s", indent: 2) == "\"s\"")
    }

    /// Strings are scanned eight bytes at a time: a character to escape (or a non-ASCII one) at
    /// every position of strings around that width is still found, by the writer and the reader.
    @Test func findsEscapesAtEveryPosition() throws {
        for length in 1...20 {
            for position in 0..<length {
                for special in ["\"", "\\", "\n", "\u{01}", "é", "\u{7F}"] {
                    let text = String(repeating: "a", count: position) + special + String(repeating: "b", count: length - position - 1)
                    let written = JSONWriter.string(.string(text))
                    let escaped = special.utf8.count == 1 && special.utf8.first! < 0x20
                        || special == "\"" || special == "\\"
                    #expect(written.contains("\\") == escaped, "\(written)")
                    #expect(try JSONReader.parse(written) == .string(text))
                }
            }
        }
    }

    @Test func appendsToAnExistingBuffer() {
        var buffer = Array("prefix:".utf8)
        JSONWriter.write(["a": [1]], into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"prefix:{"a":[1]}"#)
    }

    @Test func rereadsWhatItWrites() throws {
        let value: JSON = ["s": "\u{0}\u{1}\"\\/\u{2028}😀", "n": .number("1e-9"), "o": ["k": [nil, false]]]
        #expect(try JSONReader.parse(JSONWriter.write(value)) == value)
        #expect(try JSONReader.parse(JSONWriter.write(value, indent: 3)) == value)
    }

    /// Objects given as already written are copied as text, wherever they sit; objects that are
    /// merely equal are written as usual; strings given are copied when equal. Either way the
    /// text is the writer's own.
    @Test func reusesTheTextOfTheVeryObjectsGiven() {
        let container: JSONObject = ["name": "tandem-proxy", "env": [["name": "A", "value": "\"x\""]], "empty": [:]]
        let texts = JSONWrittenTexts([container, [:]])
        let equalCopy = JSONObject(container.members.map { ($0.key, $0.value) })
        for document: JSON in [
            .object(container), [.object(container)], ["spec": ["containers": [.object(equalCopy), .object(container)]]],
            ["a": [:], "b": [1, [:]]], "text", [.object(equalCopy)],
        ] {
            var reused: [UInt8] = []
            JSONWriter.write(document, into: &reused, reusing: texts)
            #expect(reused == JSONWriter.write(document), "\(document)")
        }
        let record = #"{"version":1,"mode":"legacy"}"#
        let withRecord = JSONWrittenTexts([container], strings: [record, ""])
        for document: JSON in [.string(record), ["a": .string(record), "b": "", "c": "{}"], .string(record + " ")] {
            var reused: [UInt8] = []
            JSONWriter.write(document, into: &reused, reusing: withRecord)
            #expect(reused == JSONWriter.write(document), "\(document)")
        }
        var patchText: [UInt8] = []
        JSONPatch([.add(path: JSONPointer(tokens: ["spec", "containers", "0"]), value: .object(container))])
            .write(into: &patchText, reusing: texts)
        #expect(String(decoding: patchText, as: UTF8.self)
            == #"[{"op":"add","path":"/spec/containers/0","value":{"name":"tandem-proxy","env":[{"name":"A","value":"\"x\""}],"empty":{}}}]"#)
    }
}
