import Document
import Foundation
import Testing

/// The captured apiserver traffic under `/work/shared/fixtures` (or `$TANDEM_FIXTURES`).
enum JSONFixtures {
    static let root = ProcessInfo.processInfo.environment["TANDEM_FIXTURES"] ?? "/work/shared/fixtures"

    static func files(withSuffix suffix: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: root)
        var paths: [String] = []
        while let relative = walker?.nextObject() as? String {
            if relative.hasSuffix(suffix) { paths.append(root + "/" + relative) }
        }
        return paths.sorted()
    }

    static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func pod(_ name: String) throws -> JSON {
        let path = root + "/kube-apiserver-1.28.4/admission-requests/\(name).request.json"
        let review = try JSONReader.parse(try read(path))
        return try review.value(at: JSONPointer(parsing: "/request/object"))
    }
}

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

    /// Every fixture reads, and writing it compactly gives a document that reads back equal.
    @Test func roundTripsEveryFixture() throws {
        let paths = JSONFixtures.files(withSuffix: ".json")
        #expect(paths.count > 100)
        for path in paths {
            let input = try JSONFixtures.read(path)
            let value = try JSONReader.parse(input)
            let compact = JSONWriter.write(value)
            #expect(try JSONReader.parse(compact) == value, "\(path)")
            #expect(JSONWriter.write(try JSONReader.parse(compact)) == compact, "\(path)")
        }
    }

    /// The apiserver's own compact output comes back byte for byte.
    @Test func writesAdmissionRequestsByteForByte() throws {
        let paths = JSONFixtures.files(withSuffix: ".request.json")
        #expect(paths.count > 20)
        for path in paths {
            var input = try JSONFixtures.read(path)
            if input.last == UInt8(ascii: "\n") { input.removeLast() }
            #expect(JSONWriter.write(try JSONReader.parse(input)) == input, "\(path)")
        }
    }

    /// kubectl `-o json` and other indented fixtures come back byte for byte with their indent.
    @Test func writesIndentedFixturesByteForByte() throws {
        var checked = 0
        for path in JSONFixtures.files(withSuffix: ".json") {
            var input = try JSONFixtures.read(path)
            guard input.starts(with: Array("{\n ".utf8)) else { continue }
            let indent = input.dropFirst(2).prefix { $0 == UInt8(ascii: " ") }.count
            if input.last == UInt8(ascii: "\n") { input.removeLast() }
            #expect(JSONWriter.write(try JSONReader.parse(input), indent: indent) == input, "\(path)")
            checked += 1
        }
        #expect(checked >= 25)
    }
}
