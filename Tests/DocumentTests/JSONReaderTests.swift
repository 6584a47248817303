import Document
import Testing

struct JSONReaderTests {
    static let accepted: [(String, JSON)] = [
        ("null", nil),
        ("true", true),
        (" false ", false),
        ("0", .number("0")),
        ("-0", .number("-0")),
        ("-12.50e+03", .number("-12.50e+03")),
        ("1E-7", .number("1E-7")),
        ("123456789012345678901234567890", .number("123456789012345678901234567890")),
        ("\"\"", ""),
        (#""a\"b\\c\/d\b\f\n\r\t""#, "a\"b\\c/d\u{8}\u{c}\n\r\t"),
        (#""\u00e9\u4E2D""#, "é中"),
        (#""\ud83d\ude00""#, "😀"),
        ("\"é中😀\"", "é中😀"),
        ("\"\u{7F}\"", "\u{7F}"),
        ("[]", []),
        ("[ 1 , [ ] , { } ]", [1, [], [:]]),
        ("{\"b\":1,\"a\":[true,null]}", ["b": 1, "a": [true, nil]]),
        ("\n\t\r {\"a\" : \"x\" } \n", ["a": "x"]),
        // Numbers of digits alone are read apart from the others, up to the byte after them.
        ("7", .number("7")),
        ("[0,10,0.5,12e3,3E2,1.0e-2,9007199254740993]",
         [.number("0"), .number("10"), .number("0.5"), .number("12e3"), .number("3E2"), .number("1.0e-2"),
          .number("9007199254740993")]),
        ("{\"a\":120,\"b\":0}", ["a": 120, "b": 0]),
        // A string value read in the object, and one after space, read as any value.
        ("{\"a\":\"x\",\"b\": \"y\" ,\"c\"\n:\n\"z\"\t}", ["a": "x", "b": "y", "c": "z"]),
    ]

    @Test(arguments: accepted)
    func parsesValidJSON(input: String, expected: JSON) throws {
        #expect(try JSONReader.parse(input) == expected)
        #expect(try JSONReader.parse(Array(input.utf8)) == expected)
    }

    @Test func readsAnyContiguousBytes() throws {
        let body = Array("HTTP body: [1, {\"a\": \"b\"}]".utf8)
        let expected: JSON = [1, ["a": "b"]]
        #expect(try JSONReader.parse(body[11...]) == expected)
        #expect(try body.withUnsafeBytes { bytes in try JSONReader.parse(bytes[11...]) } == expected)
        #expect(try JSONReader.parse(body.dropFirst(11).lazy.map { $0 }) == expected)
    }

    /// Member names are compared as JSON compares them, code point by code point: the Kelvin
    /// sign is not the letter K, though Swift's `==` calls the two strings equal.
    @Test func looksUpMembersByTheirCodePoints() throws {
        let object = try #require(try JSONReader.parse(#"{"\u212A":1,"K":2}"#).objectValue)
        #expect(object.count == 2)
        #expect(object["K"] == 2)
        #expect(object["\u{212A}"] == 1)
        #expect(object["k"] == nil)
    }

    /// Objects of more than 16 members find repeated keys through an index rather than a scan;
    /// a repeat anywhere is still an error at the repeated key, and a near miss is not.
    @Test func findsDuplicatesInLargeObjects() throws {
        let keys = (0..<300).map { "k:{\\\"name\\\":\\\"VAR_\($0)\\\"}" }
        func object(_ keys: [String]) -> String { "{" + keys.map { "\"\($0)\":{}" }.joined(separator: ",") + "}" }
        #expect(try JSONReader.parse(object(keys)).objectValue?.count == 300)
        for (repeated, at) in [(3, 20), (17, 18), (250, 299)] {
            var withRepeat = keys
            withRepeat[at] = keys[repeated]
            do {
                _ = try JSONReader.parse(object(withRepeat))
                Issue.record("key \(repeated) repeated at \(at) was not found")
            } catch {
                #expect(error.message == "duplicate key \"k:{\"name\":\"VAR_\(repeated)\"}\" in object")
            }
        }
    }

    /// A large object's index of keys is made at the first key whose length was seen before:
    /// keys of lengths all different until then are in it all the same, and a repeat of any of
    /// them, before or after, is found at the repeated key.
    @Test func findsRepeatsOfKeysReadBeforeTheIndexWasMade() throws {
        for count in [15, 16, 17, 30] {
            let keys = (1...count).map { String(repeating: "k", count: $0) }
            for repeated in [0, count / 2, count - 1] {
                for afterASameLengthKey in [false, true] {
                    let members = keys + (afterASameLengthKey ? ["j"] : []) + [keys[repeated]]
                    let head = "{" + members.dropLast().map { "\"\($0)\":0," }.joined()
                    do {
                        _ = try JSONReader.parse(head + "\"\(keys[repeated])\":1}")
                        Issue.record("key \(repeated) of \(count) repeated was not found")
                    } catch {
                        #expect(error.offset == head.utf8.count)
                        #expect(error.message == "duplicate key \"\(keys[repeated])\" in object")
                    }
                    let nearMiss = String(repeating: "k", count: repeated) + "i"
                    let object = try #require(try JSONReader.parse(head + "\"\(nearMiss)\":1}").objectValue)
                    #expect(object.count == members.count)
                }
            }
        }
    }

    /// Short ASCII keys are read and compared by their bits, others as strings: a key of any
    /// length, written plainly, with an escape or beyond ASCII, near the end of the input or
    /// not, in a small object or a large one, is told apart from a near miss and found repeated,
    /// whichever way each of the two was read.
    @Test func findsRepeatedKeysOfEveryLengthAndSpelling() throws {
        for length in 0...20 {
            let plain = String(repeating: "k", count: length)
            var spellings = [plain]
            if length > 0 {
                spellings.append(#"\u006B"# + String(repeating: "k", count: length - 1))
                spellings.append("é" + String(repeating: "k", count: length - 1))
            }
            let nearMiss = length == 0 ? "j" : String(repeating: "k", count: length - 1) + "j"
            for others in [0, 20] {
                let filler = (0..<others).map { "\"f\($0)\":0," }.joined()
                for first in spellings {
                    for second in spellings {
                        for padding in ["", String(repeating: " ", count: 20)] {
                            let head = "{\"\(first)\":1,\(filler)"
                            let missed = try #require(try JSONReader.parse(head + "\"\(nearMiss)\":2}" + padding).objectValue)
                            #expect(missed.count == others + 2)
                            #expect(missed[nearMiss] == 2)
                            let text = head + "\"\(second)\":2}" + padding
                            let sameText = first.contains("é") == second.contains("é")
                            do throws(JSONParseError) {
                                let value = try JSONReader.parse(text)
                                #expect(!sameText, "\(text)")
                                #expect(value.objectValue?.count == others + 2)
                            } catch {
                                #expect(sameText, "\(text)")
                                #expect(error.offset == head.utf8.count, "\(text)")
                                #expect(error.message.hasPrefix("duplicate key "), "\(text)")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test func keepsObjectKeyOrder() throws {
        let value = try JSONReader.parse(#"{"z":1,"a":2,"m":3}"#)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
    }

    static let rejected: [(String, String)] = [
        ("", "line 1, column 1: unexpected end of input, expected a value"),
        ("   ", "line 1, column 4: unexpected end of input, expected a value"),
        ("{\n  \"a\": 1,\n  \"b\": 2 \"c\"}", "line 3, column 10: expected ',' or '}' after object member"),
        ("[1 2]", "line 1, column 4: expected ',' or ']' after array element"),
        ("[1,", "line 1, column 4: unexpected end of input, expected a value"),
        ("[1", "line 1, column 3: unexpected end of input, expected ',' or ']' after array element"),
        ("{\"a\":1", "line 1, column 7: unexpected end of input, expected ',' or '}' after object member"),
        ("{\"a\" 1}", "line 1, column 6: expected ':' after object key"),
        ("{a:1}", "line 1, column 2: expected a string as object key"),
        ("[1,]", "line 1, column 4: trailing comma before ']'"),
        ("{\"a\":1,}", "line 1, column 8: trailing comma before '}'"),
        ("{\"a\":1,\"b\":2,\"a\":3}", "line 1, column 14: duplicate key \"a\" in object"),
        ("01", "line 1, column 1: leading zeros are not allowed in numbers"),
        ("-012", "line 1, column 1: leading zeros are not allowed in numbers"),
        ("00", "line 1, column 1: leading zeros are not allowed in numbers"),
        ("[1,012]", "line 1, column 4: leading zeros are not allowed in numbers"),
        ("10.", "line 1, column 4: unexpected end of input, expected a digit after the decimal point"),
        ("10e", "line 1, column 4: unexpected end of input, expected a digit in the exponent"),
        ("[10x]", "line 1, column 4: expected ',' or ']' after array element"),
        ("{\"a\":\"x\" \"b\":1}", "line 1, column 10: expected ',' or '}' after object member"),
        ("-", "line 1, column 2: unexpected end of input, expected a digit after '-'"),
        ("-a", "line 1, column 2: expected a digit after '-'"),
        ("1.", "line 1, column 3: unexpected end of input, expected a digit after the decimal point"),
        ("1.e3", "line 1, column 3: expected a digit after the decimal point"),
        ("1e+", "line 1, column 4: unexpected end of input, expected a digit in the exponent"),
        (".5", "line 1, column 1: unexpected character '.', expected a value"),
        ("+1", "line 1, column 1: unexpected character '+', expected a value"),
        ("NaN", "line 1, column 1: NaN is not a JSON value"),
        ("[Infinity]", "line 1, column 2: Infinity is not a JSON value"),
        ("-Infinity", "line 1, column 1: -Infinity is not a JSON value"),
        ("tru", "line 1, column 1: invalid literal, expected 'true'"),
        ("nul", "line 1, column 1: invalid literal, expected 'null'"),
        ("falsy", "line 1, column 1: invalid literal, expected 'false'"),
        ("{} {}", "line 1, column 4: unexpected character '{' after the JSON value"),
        ("1 x", "line 1, column 3: unexpected character 'x' after the JSON value"),
        ("\"abc", "line 1, column 1: unterminated string"),
        ("\"ab\\", "line 1, column 1: unterminated string"),
        ("\"a\nb\"", "line 1, column 3: unescaped control character U+000A in string"),
        ("\"a\tb\"", "line 1, column 3: unescaped control character U+0009 in string"),
        ("\"\\x\"", "line 1, column 2: invalid escape '\\x' in string"),
        ("\"\\u12G4\"", "line 1, column 2: invalid \\u escape in string, expected 4 hex digits"),
        ("\"\\ud83d\"", "line 1, column 2: unpaired surrogate \\uD83D in string"),
        ("\"\\ud83dx\"", "line 1, column 2: unpaired surrogate \\uD83D in string"),
        ("\"\\ud83d\\u0041\"", "line 1, column 2: unpaired surrogate \\uD83D in string"),
        ("\"\\ude00\"", "line 1, column 2: unpaired surrogate \\uDE00 in string"),
        ("[\"é\", {\"k\": \"\\q\"}]", "line 1, column 14: invalid escape '\\q' in string"),
        ("\u{FEFF}{}", "line 1, column 1: unexpected byte 0xEF, expected a value"),
        ("[1,,2]", "line 1, column 4: unexpected character ',', expected a value"),
        ("{,}", "line 1, column 2: expected a string as object key"),
        ("[0x1]", "line 1, column 3: expected ',' or ']' after array element"),
        ("[\"\\u00A\"]", "line 1, column 3: invalid \\u escape in string, expected 4 hex digits"),
        ("[\"\\uD800\\uD800\"]", "line 1, column 3: unpaired surrogate \\uD800 in string"),
        ("{\"a\":1}\n#", "line 2, column 1: unexpected character '#' after the JSON value"),
    ]

    @Test(arguments: rejected)
    func rejectsInvalidJSON(input: String, message: String) {
        #expect(throws: JSONParseError.self) { try JSONReader.parse(input) }
        do {
            _ = try JSONReader.parse(input)
        } catch {
            #expect(error.description == message)
        }
    }

    static let invalidUTF8: [([UInt8], String)] = [
        ([0x22, 0xFF, 0x22], "line 1, column 2: invalid UTF-8 byte 0xFF in string"),
        ([0x22, 0x61, 0xC3, 0x22], "line 1, column 3: invalid UTF-8 sequence starting with byte 0xC3 in string"),
        // An overlong encoding of '/' and an encoded surrogate are not UTF-8.
        ([0x22, 0xC0, 0xAF, 0x22], "line 1, column 2: invalid UTF-8 byte 0xC0 in string"),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], "line 1, column 2: invalid UTF-8 sequence starting with byte 0xED in string"),
        ([0x22, 0x5C, 0x6E, 0xF4, 0x90, 0x80, 0x80, 0x22], "line 1, column 4: invalid UTF-8 sequence starting with byte 0xF4 in string"),
        ([0x5B, 0xC3, 0xA9, 0x5D], "line 1, column 2: unexpected byte 0xC3, expected a value"),
    ]

    @Test(arguments: invalidUTF8)
    func rejectsInvalidUTF8(input: [UInt8], message: String) {
        do {
            _ = try JSONReader.parse(input)
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func reportsOffsetLineAndColumnInScalars() {
        let input = "{\"é\": 1,\n \"ü\": tx}"
        do {
            _ = try JSONReader.parse(input)
            Issue.record("accepted invalid literal")
        } catch {
            #expect(error.offset == Array(input.utf8).firstIndex(of: UInt8(ascii: "t")))
            #expect(error.line == 2)
            #expect(error.column == 7)
            #expect(error.message == "invalid literal, expected 'true'")
        }
    }

    @Test func limitsNestingDepth() throws {
        let deepest = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        _ = try JSONReader.parse(deepest)
        let tooDeep = "[" + deepest + "]"
        #expect(throws: JSONParseError(offset: 512, line: 1, column: 513, message: "nesting is deeper than 512 levels")) {
            try JSONReader.parse(tooDeep)
        }
        #expect(throws: JSONParseError.self) { try JSONReader.parse("[[[1]]]", maxDepth: 2) }
        #expect(try JSONReader.parse("[[1]]", maxDepth: 2) == [[1]])
    }

    @Test func readsLargeObjectsAndTheirDuplicates() throws {
        let members = (0..<100).map { "\"key\($0)\":\($0)" }
        let object = try JSONReader.parse("{" + members.joined(separator: ",") + "}")
        #expect(object.objectValue?.count == 100)
        #expect(object["key99"] == 99)
        #expect(throws: JSONParseError.self) {
            try JSONReader.parse("{" + (members + ["\"key42\":0"]).joined(separator: ",") + "}")
        }
    }

    @Test func readsStreamsOfValues() throws {
        let input = "{\"a\":1}\n{\"b\":[2]}{\"c\":3} 4 \"five\"\n"
        let values = try JSONReader.parseStream(input)
        #expect(values.map(\.value) == [["a": 1], ["b": [2]], ["c": 3], 4, "five"])
        #expect(values.map(\.offset) == [0, 8, 17, 25, 27])
        #expect(values.map(\.endOffset) == [7, 17, 24, 26, 33])
        #expect(try JSONReader.parseStream(" \n ").isEmpty)
        #expect(throws: JSONParseError(offset: 14, line: 2, column: 7, message: "expected ',' or '}' after object member")) {
            try JSONReader.parseStream("{\"a\":1}\n{\"b\":2]")
        }
    }

    @Test func readsEveryWatchStreamFixture() throws {
        let streams = JSONFixtures.files(withSuffix: ".stream.jsonl")
        #expect(!streams.isEmpty)
        for path in streams {
            let bytes = try JSONFixtures.read(path)
            let values = try JSONReader.parseStream(bytes)
            let lines = bytes.split(separator: UInt8(ascii: "\n"))
            #expect(values.count == lines.count, "\(path)")
            for value in values {
                #expect(value.value["type"]?.stringValue != nil, "\(path) at \(value.offset)")
            }
        }
    }
}

/// A seeded generator, so random inputs are the same on every run.
private struct Bytes: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state ^ (state >> 29)
    }

    /// Bytes JSON gives meaning to, and some it forbids.
    static let alphabet = Array(#"{}[]:,"\ u0123456789-+.eEtrufalsn"#.utf8) + [0x00, 0x0A, 0xC3, 0xFF]

    /// `document` with one to three bytes replaced, removed or inserted.
    mutating func corrupting(_ document: [UInt8]) -> [UInt8] {
        var bytes = document
        for _ in 0..<Int.random(in: 1...3, using: &self) {
            let position = Int.random(in: 0..<bytes.count, using: &self)
            switch Int.random(in: 0..<3, using: &self) {
            case 0: bytes[position] = Self.alphabet.randomElement(using: &self)!
            case 1: bytes.remove(at: position)
            default: bytes.insert(Self.alphabet.randomElement(using: &self)!, at: position)
            }
        }
        return bytes
    }
}

/// Random inputs: the reader agrees with the standard library on UTF-8 and never crashes.
struct JSONReaderRandomInputTests {

    @Test func acceptsExactlyTheValidUTF8Strings() throws {
        var random = Bytes(state: 7)
        let pieces: [[UInt8]] = [[0x61], [0xC3, 0xA9], [0xE4, 0xB8, 0xAD], [0xF0, 0x9F, 0x98, 0x80], [0x80], [0xBF],
                                 [0xC0], [0xC1], [0xE0, 0x80], [0xED, 0xA0], [0xF4, 0x90], [0xF5], [0xFF], [0xE2, 0x82]]
        for _ in 0..<3000 {
            var content: [UInt8] = []
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                content += pieces.randomElement(using: &random)!
            }
            let expected = String(validating: content, as: UTF8.self)
            let parsed = try? JSONReader.parse([UInt8(ascii: "\"")] + content + [UInt8(ascii: "\"")])
            #expect(parsed == expected.map(JSON.string), "\(content)")
        }
    }

    @Test func corruptedDocumentsThrowInsteadOfCrashing() throws {
        let original = Array(#"{"a":[1,-2.5e3,"x\"y\u00e9",{"b":null,"c":true}],"d":"é"}"#.utf8)
        var random = Bytes(state: 11)
        var rejected = 0
        for _ in 0..<5000 {
            let bytes = random.corrupting(original)
            do {
                let value = try JSONReader.parse(bytes)
                #expect(try JSONReader.parse(JSONWriter.write(value)) == value)
            } catch {
                #expect(error.offset <= bytes.count)
                rejected += 1
            }
        }
        #expect(rejected > 3000)
        for length in 0..<original.count {
            #expect(throws: JSONParseError.self) { try JSONReader.parse(Array(original[..<length])) }
        }
    }
}

/// Objects and arrays wait for their members and elements on stacks of the parser's: nested deep
/// and wide, each gets its own, in order, whatever the others hold.
struct JSONReaderNestingTests {
    /// Each thread keeps its parser's stacks between its reads: reads on many threads at once,
    /// each with strings decoded from escapes, each get their own values.
    @Test func readsOnManyThreadsAtOnce() async throws {
        let documents: [JSON] = (0..<8).map { thread in
            .array((0..<200).map { entry in
                ["thread": .integer(thread), "entry": .integer(entry), "text": .string("\t\(thread)/\(entry) of the text\n")]
            })
        }
        let texts = documents.map { String(decoding: JSONWriter.write($0), as: UTF8.self) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for (text, document) in zip(texts, documents) {
                group.addTask { try (0..<50).allSatisfy { _ in try JSONReader.parse(text) == document } }
            }
            for try await readRight in group { #expect(readRight) }
        }
    }

    @Test func buildsNestedContainersWithTheirOwnMembers() throws {
        func object(_ level: Int) -> JSON {
            guard level > 0 else { return "leaf" }
            var members: [(String, JSON)] = []
            for index in 0..<(level % 3 == 0 ? 20 : 3) {
                members.append(("k\(index)", index == 1 ? .array([object(level - 1), .number("\(level)"), []]) : .integer(index)))
            }
            members.append(("last", object(level - 1)))
            return .object(JSONObject(members))
        }
        let value = object(7)
        let text = String(decoding: JSONWriter.write(value), as: UTF8.self)
        let read = try JSONReader.parse(text)
        #expect(read == value)
        #expect(String(decoding: JSONWriter.write(read), as: UTF8.self) == text, "members keep their order")
        // A refused document leaves nothing behind for the next one.
        #expect(throws: JSONParseError.self) { try JSONReader.parse(String(text.dropLast())) }
        #expect(try JSONReader.parse(text) == value)
        let stream = try JSONReader.parseStream(text + " " + text)
        #expect(stream.map(\.value) == [value, value])
    }
}

/// `parse(_:skipping:)` reads skipped members as null, and refuses what `parse` refuses, with the
/// same messages and places, but for keys repeated inside a skipped member, which it does not look
/// for (see there).
struct JSONReaderSkippingTests {
    static let skipped = [["a", "skip"]]

    /// `text` as the skipped member, between members that are kept.
    static func wrapped(_ text: [UInt8]) -> [UInt8] {
        Array(#"{"a":{"keep":1,"skip":"#.utf8) + text + Array(#","after":[2]},"b":3}"#.utf8)
    }

    /// What skipping the members at `paths` of `bytes` must give: what `parse` gives, those
    /// members null, once each key it finds repeated inside one is renamed (see `renamingKey`);
    /// nil if such a key is empty, with nothing to rename.
    static func expectedSkipping(_ bytes: [UInt8], _ paths: [[String]]) -> Result<JSON, JSONParseError>? {
        var document = bytes
        var attempt = 0
        while true {
            do throws(JSONParseError) {
                var value = try JSONReader.parse(document)
                for path in paths { value = nulling(path[...], in: value) }
                return .success(value)
            } catch {
                guard error.message.hasPrefix("duplicate key "),
                      case let enclosing = keyPath(enclosing: error.offset, in: document),
                      paths.contains(where: { enclosing.starts(with: $0.map(Optional.some)) }) else {
                    return .failure(error)
                }
                guard let renamed = renamingKey(at: error.offset, in: document, attempt: attempt) else { return nil }
                document = renamed
                attempt += 1
            }
        }
    }

    /// `value` with the member at `path` null, if there is one.
    static func nulling(_ path: ArraySlice<String>, in value: JSON) -> JSON {
        guard case .object(var object) = value, let key = path.first, let member = object[key] else { return value }
        object[key] = path.count == 1 ? .null : nulling(path.dropFirst(), in: member)
        return .object(object)
    }

    /// The keys from the root to the object or array that holds `offset` (nil for the elements
    /// of an array), in a document that `parse` read without error up to there.
    static func keyPath(enclosing offset: Int, in bytes: [UInt8]) -> [String?] {
        var path: [String?] = []
        var containers: [UInt8] = []
        var key: String? = nil
        var expectsKey = false
        var position = 0
        while position < offset {
            switch bytes[position] {
            case UInt8(ascii: "\""):
                let quote = position
                position += 1
                while bytes[position] != UInt8(ascii: "\"") { position += bytes[position] == UInt8(ascii: "\\") ? 2 : 1 }
                if expectsKey { key = (try? JSONReader.parse(Array(bytes[quote...position])))?.stringValue }
                expectsKey = false
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                path.append(containers.last == UInt8(ascii: "{") ? key : nil)
                containers.append(bytes[position])
                expectsKey = bytes[position] == UInt8(ascii: "{")
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                path.removeLast()
                containers.removeLast()
            case UInt8(ascii: ","):
                expectsKey = containers.last == UInt8(ascii: "{")
            default:
                break
            }
            position += 1
        }
        return Array(path.dropFirst())
    }

    /// `bytes` with each character of the key at `quote` replaced by one of as many bytes (a
    /// letter, or two for an escape's first two bytes; a Cyrillic letter, a CJK ideograph, an
    /// emoji; `attempt` picks which), so that nothing else moves: offsets, lines and columns stay.
    static func renamingKey(at quote: Int, in bytes: [UInt8], attempt: Int) -> [UInt8]? {
        if bytes[quote + 1] == UInt8(ascii: "\"") { return nil }
        var renamed = bytes
        var position = quote + 1
        var code = attempt
        while bytes[position] != UInt8(ascii: "\"") {
            let byte = bytes[position]
            let replacement: [UInt8]
            if byte < 0x80 {
                let letter = UInt8(ascii: "A") + UInt8(code % 26)
                replacement = byte == UInt8(ascii: "\\") ? [letter, letter] : [letter]
            } else {
                let first: UInt32 = byte < 0xE0 ? 0x410 : byte < 0xF0 ? 0x4E00 : 0x1F600
                replacement = Array(String(Unicode.Scalar(first + UInt32(code % 26))!).utf8)
            }
            renamed.replaceSubrange(position..<position + replacement.count, with: replacement)
            position += replacement.count
            code /= 26
        }
        return renamed
    }

    static func sameOutcome(_ text: [UInt8]) {
        let bytes = wrapped(text)
        expectSkippingAsParse(bytes, skipping: skipped)
    }

    /// Skipping gives `expectedSkipping`, members in the same order.
    static func expectSkippingAsParse(_ bytes: [UInt8], skipping paths: [[String]]) {
        let shown = String(decoding: bytes, as: UTF8.self)
        let skipped = Result { () throws(JSONParseError) in try JSONReader.parse(bytes, skipping: paths) }
        guard let expected = expectedSkipping(bytes, paths) else {
            // An empty key repeated, with nothing to rename: skipping at least reads on past it.
            let parsed = Result { () throws(JSONParseError) in try JSONReader.parse(bytes) }
            if case .failure(let error) = skipped, case .failure(let repeated) = parsed {
                #expect(error.offset > repeated.offset, "\(shown)")
            }
            return
        }
        #expect(skipped == expected, "\(shown)")
        if case .success(let value) = skipped, case .success(let expectedValue) = expected {
            #expect(JSONWriter.write(value) == JSONWriter.write(expectedValue), "members keep their order")
        }
    }

    @Test(arguments: JSONReaderTests.accepted.map(\.0) + JSONReaderTests.rejected.map(\.0))
    func skipsAsStrictlyAsItReads(_ text: String) {
        Self.sameOutcome(Array(text.utf8))
    }

    @Test(arguments: JSONReaderTests.invalidUTF8.map(\.0))
    func skipsInvalidUTF8AsItReadsIt(_ bytes: [UInt8]) {
        Self.sameOutcome(bytes)
    }

    /// Keys repeated inside a skipped member, in small and large objects, ASCII or not, escaped
    /// or not, nested, in arrays: `parse` refuses each, skipping reads it with the member null.
    @Test func acceptsKeysRepeatedInsideSkippedMembers() throws {
        let names = (0..<40).map { #""k:{\"name\":\"VAR_\#($0)\"}""# }
        func object(_ keys: [String]) -> String { "{" + keys.map { "\($0):{\"f:name\":{},\".\":{}}" }.joined(separator: ",") + "}" }
        var cases = [
            object(names + [names[3]]), object(Array(names[0..<5]) + [names[2]]), #"{"K":1,"K":2}"#,
            "{\"a\u{301}\u{327}\":1,\"a\u{327}\u{301}\":2}",
            object(names + ["\"é\"", "\"\\u00e9\""]), object(["\"x\""] + names + ["\"\\u0078\""]),
            #"{"a":{},"b":{"a":{}},"a":{}}"#, #"{"a":{"a":1,"a":2}}"#, #"{"a\"b":1,"a\u0022b":2}"#,
            #"{"":1,"":2}"#, #"[{"x":1},{"y":[{"z":1,"z":1}]}]"#,
        ]
        cases += cases.map { "[" + $0 + "]" }
        for text in cases {
            let bytes = Self.wrapped(Array(text.utf8))
            do {
                _ = try JSONReader.parse(bytes)
                Issue.record("parse accepted \(text)")
            } catch {
                #expect(error.message.hasPrefix("duplicate key "), "\(text)")
            }
            #expect(try JSONReader.parse(bytes, skipping: Self.skipped) == ["a": ["keep": 1, "skip": nil, "after": [2]], "b": 3])
        }
    }

    /// Outside skipped members, repeats are refused as `parse` refuses them: a skipped member's
    /// own name repeated, a repeat beside one, in a kept member, at the root, and under a member
    /// of the skipped name on another path.
    @Test func refusesKeysRepeatedOutsideSkippedMembers() throws {
        let documents = [
            #"{"a":{"keep":1,"skip":{"x":1},"skip":2}}"#, #"{"a":{"skip":[1],"keep":1,"keep":2}}"#,
            #"{"a":{"keep":{"z":1,"z":2},"skip":{}}}"#, #"{"a":{"skip":null},"a":2}"#,
            #"{"b":{"skip":{"x":1,"x":2}}}"#, #"{"a":[{"skip":{"x":1,"x":2}}]}"#,
        ]
        for text in documents {
            let parsed = Result { () throws(JSONParseError) in try JSONReader.parse(text) }
            let skipped = Result { () throws(JSONParseError) in try JSONReader.parse(text.utf8, skipping: Self.skipped) }
            #expect(skipped == parsed, "\(text)")
            #expect(throws: JSONParseError.self) { try parsed.get() }
        }
        // A repeat inside the skipped member, then the member's name repeated: the second is refused.
        let text = #"{"a":{"skip":{"x":1,"x":2},"skip":3}}"#
        #expect(throws: JSONParseError(offset: 20, line: 1, column: 21, message: #"duplicate key "x" in object"#)) {
            try JSONReader.parse(text)
        }
        #expect(throws: JSONParseError(offset: 27, line: 1, column: 28, message: #"duplicate key "skip" in object"#)) {
            try JSONReader.parse(text.utf8, skipping: Self.skipped)
        }
    }

    /// Randomly corrupted documents, skipping their first member: the same errors as `parse`,
    /// but for keys repeated inside that member.
    @Test func corruptedDocumentsFailAlike() {
        let original = Array(#"{"a":{"k:{\"n\":\"x\"}":{".":{},"f:é":[1,"x\"y\u00e9",{"b":null}]},"c":true},"d":"é"}"#.utf8)
        var random = Bytes(state: 12)
        for _ in 0..<5000 {
            Self.expectSkippingAsParse(random.corrupting(original), skipping: [["a"]])
        }
    }

    /// Documents cut anywhere, inside a skipped member or after it: the same errors as `parse`,
    /// strings near the end of the input included (read there a byte at a time).
    @Test func truncatedDocumentsFailAlike() {
        let skippedMember = #"[{"k:{\"name\":\"FLAG_0001\"}":{".":{},"f:é":"x\u00e9\"y\/"}},"a string of plain text",-1.5e3,true]"#
        let document = Array(#"{"a":{"keep":1,"skip":\#(skippedMember)},"b":3}"#.utf8)
        for end in 0...document.count {
            Self.expectSkippingAsParse(Array(document[..<end]), skipping: Self.skipped)
        }
    }

    /// Objects in objects, as managedFields nests them (skipped in one loop, not a call for each):
    /// with every byte left out in turn, and with a `,`, a `}` or a space put in before every byte,
    /// the same errors as `parse`, when objects close one at a time or several at once.
    @Test func nestedSkippedObjectsFailAlike() {
        let nested = Array(#"{"f:a":{"f:b":{".":{},"f:c":{}},"f:d":{"f:e":{"f:f":{}}}},"f:g":{ },"f:h":[{"i":{}}]}"#.utf8)
        for position in nested.indices {
            var changed = [nested]
            changed[0].remove(at: position)
            for byte in Array(", }".utf8) {
                var inserted = nested
                inserted.insert(byte, at: position)
                changed.append(inserted)
            }
            for text in changed {
                Self.expectSkippingAsParse(Self.wrapped(text), skipping: Self.skipped)
            }
        }
    }

    /// The depth limit holds inside skipped members as outside, for an empty object at the limit
    /// as for any other value: the same errors at the same places.
    @Test func skipsNoDeeperThanItReads() {
        for depth in 0...4 {
            for inner in ["{}", "[]", "1", #"{"x":{}}"#, "[{}]", #"{"x":[]}"#] {
                let objects = String(repeating: #"{"k":"#, count: depth) + inner + String(repeating: "}", count: depth)
                let arrays = String(repeating: "[", count: depth) + inner + String(repeating: "]", count: depth)
                for text in [objects, arrays] {
                    let bytes = Self.wrapped(Array(text.utf8))
                    for maxDepth in 2...8 {
                        let parsed = Result { () throws(JSONParseError) in
                            Self.nulling(["a", "skip"], in: try JSONReader.parse(bytes, maxDepth: maxDepth))
                        }
                        let skipped = Result { () throws(JSONParseError) in
                            try JSONReader.parse(bytes, skipping: Self.skipped, maxDepth: maxDepth)
                        }
                        #expect(skipped == parsed, "\(text) at most \(maxDepth) deep")
                    }
                }
            }
        }
    }

    /// Strings and keys where ASCII text ends, by a character beyond ASCII, an escape, a control
    /// character or the quote, at each place around the eight bytes read at a time, read and
    /// skipped alike; keys so made repeat in small and large objects, nested in arrays.
    @Test func readsAndSkipsTextThatStopsBeingPlainASCIIAnywhere() {
        let endings = ["é", "\\u00e9", "\\\"", "\\n", "\u{1}", "😀", "\u{7F}", ""]
        var texts: [String] = []
        for length in 0...18 {
            for ending in endings {
                let text = String(repeating: "k", count: length) + ending
                texts.append(text)
                texts.append(text + "tail")
            }
        }
        for text in texts {
            Self.sameOutcome(Array("\"\(text)\"".utf8))
            Self.sameOutcome(Array("{\"\(text)\":[\"\(text)\"],\"x\":{}}".utf8))
            Self.sameOutcome(Array("[{\"\(text)\":1,\"a\":2,\"\(text)\":3}]".utf8))
        }
        let many = texts.enumerated().map { "\"\($1)\($0)\":{}" }
        Self.sameOutcome(Array(("{" + many.joined(separator: ",") + "}").utf8))
        Self.sameOutcome(Array(("[{" + (many + [many[40]]).joined(separator: ",") + "}]").utf8))
    }

    @Test func skipsOnlyTheGivenPaths() throws {
        let text = #"{"a":{"skip":{"x":[1,{"y":2}]},"other":{"skip":5}},"skip":6}"#
        let json = try JSONReader.parse(text.utf8, skipping: [["a", "skip"], ["missing", "skip"]])
        #expect(json == ["a": ["skip": nil, "other": ["skip": 5]], "skip": 6])
        #expect(try JSONReader.parse(text.utf8, skipping: [["a"]]) == ["a": nil, "skip": 6])
        #expect(try JSONReader.parse(text.utf8, skipping: []) == JSONReader.parse(text))
    }
}
