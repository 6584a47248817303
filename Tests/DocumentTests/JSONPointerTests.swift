import Document
import Testing

struct JSONPointerTests {
    static let document: JSON = try! JSONReader.parse(#"""
        {"foo":["bar","baz"],"":0,"a/b":1,"c%d":2,"e^f":3,"g|h":4,"i\\j":5,"k\"l":6," ":7,"m~n":8}
        """#)

    /// RFC 6901 section 5.
    static let rfcExamples: [(String, JSON)] = [
        ("", document),
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ("/k\"l", 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ]

    @Test(arguments: rfcExamples)
    func resolvesRFCExamples(text: String, expected: JSON) throws {
        let pointer = try JSONPointer(parsing: text)
        #expect(try Self.document.value(at: pointer) == expected)
        #expect(pointer.description == text)
    }

    @Test func escapesTildeBeforeSlash() throws {
        let pointer = JSONPointer(tokens: ["metadata", "annotations", "tandem.io/inject~x", "~1"])
        #expect(pointer.description == "/metadata/annotations/tandem.io~1inject~0x/~01")
        #expect(try JSONPointer(parsing: pointer.description) == pointer)
        #expect(try JSONPointer(parsing: "/~01").tokens == ["~1"])
        #expect(try JSONPointer(parsing: "/a//b/").tokens == ["a", "", "b", ""])
    }

    @Test func buildsPointers() {
        let pointer = JSONPointer.root.appending("spec").appending("containers").appending(index: 2)
        #expect(pointer.description == "/spec/containers/2")
        #expect(pointer.parent.description == "/spec/containers")
        #expect(JSONPointer.root.description == "")
        #expect(JSONPointer.root.isRoot)
        #expect(pointer.parent.isProperPrefix(of: pointer))
        #expect(!pointer.isProperPrefix(of: pointer))
    }

    static let invalidPointers: [(String, String)] = [
        ("foo", "invalid JSON pointer \"foo\": it must be empty or start with '/'"),
        ("/a~2", "invalid JSON pointer \"/a~2\": '~' must be followed by '0' or '1'"),
        ("/a~", "invalid JSON pointer \"/a~\": '~' must be followed by '0' or '1'"),
    ]

    @Test(arguments: invalidPointers)
    func rejectsInvalidPointers(text: String, message: String) {
        #expect(throws: JSONPointerError(message)) { try JSONPointer(parsing: text) }
    }

    static let missingPaths: [(String, String)] = [
        ("/nope", "path /nope not found: no member \"nope\" at the document root"),
        ("/foo/2", "path /foo/2 not found: index 2 is out of range for the array of 2 elements at /foo"),
        ("/foo/-", "path /foo/- not found: \"-\" names no existing element in the array at /foo"),
        ("/foo/01", "path /foo/01 not found: \"01\" is not an array index at /foo"),
        ("/foo/x", "path /foo/x not found: \"x\" is not an array index at /foo"),
        // Array tokens are read as bytes: signs, other digits, overflow and long tokens (not held
        // inline in their string) are told apart as `Int(token)` told them.
        ("/foo/", "path /foo/ not found: \"\" is not an array index at /foo"),
        ("/foo/+1", "path /foo/+1 not found: \"+1\" is not an array index at /foo"),
        ("/foo/-1", "path /foo/-1 not found: \"-1\" is not an array index at /foo"),
        ("/foo/1x", "path /foo/1x not found: \"1x\" is not an array index at /foo"),
        ("/foo/\u{661}", "path /foo/\u{661} not found: \"\u{661}\" is not an array index at /foo"),
        ("/foo/9223372036854775807",
         "path /foo/9223372036854775807 not found: index 9223372036854775807 is out of range for the array of 2 elements at /foo"),
        ("/foo/9223372036854775808", "path /foo/9223372036854775808 not found: \"9223372036854775808\" is not an array index at /foo"),
        ("/foo/0000000000000000001", "path /foo/0000000000000000001 not found: \"0000000000000000001\" is not an array index at /foo"),
        ("/foo/0/x", "path /foo/0/x not found: a string has no members at /foo/0"),
        ("/a~1b/c", "path /a~1b/c not found: a number has no members at /a~1b"),
    ]

    @Test(arguments: missingPaths)
    func explainsMissingPaths(text: String, message: String) throws {
        let pointer = try JSONPointer(parsing: text)
        #expect(throws: JSONPointerError(message)) { try Self.document.value(at: pointer) }
    }
}
