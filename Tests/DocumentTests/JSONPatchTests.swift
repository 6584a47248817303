import Document
import Testing

private func json(_ text: String) -> JSON {
    try! JSONReader.parse(text)
}

private func patch(_ text: String) throws(JSONPatchError) -> JSONPatch {
    try JSONPatch(json: json(text))
}

struct JSONPatchApplyTests {
    /// RFC 6902 Appendix A: document, patch, expected result.
    static let rfcSuccesses: [(String, String, String)] = [
        // A.1 adding an object member
        (#"{"foo":"bar"}"#, #"[{"op":"add","path":"/baz","value":"qux"}]"#, #"{"baz":"qux","foo":"bar"}"#),
        // A.2 adding an array element
        (#"{"foo":["bar","baz"]}"#, #"[{"op":"add","path":"/foo/1","value":"qux"}]"#, #"{"foo":["bar","qux","baz"]}"#),
        // A.3 removing an object member
        (#"{"baz":"qux","foo":"bar"}"#, #"[{"op":"remove","path":"/baz"}]"#, #"{"foo":"bar"}"#),
        // A.4 removing an array element
        (#"{"foo":["bar","qux","baz"]}"#, #"[{"op":"remove","path":"/foo/1"}]"#, #"{"foo":["bar","baz"]}"#),
        // A.5 replacing a value
        (#"{"baz":"qux","foo":"bar"}"#, #"[{"op":"replace","path":"/baz","value":"boo"}]"#, #"{"baz":"boo","foo":"bar"}"#),
        // A.6 moving a value
        (#"{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}"#,
         #"[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]"#,
         #"{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}"#),
        // A.7 moving an array element
        (#"{"foo":["all","grass","cows","eat"]}"#, #"[{"op":"move","from":"/foo/1","path":"/foo/3"}]"#,
         #"{"foo":["all","cows","eat","grass"]}"#),
        // A.8 testing a value: success
        (#"{"baz":"qux","foo":["a",2,"c"]}"#,
         #"[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]"#,
         #"{"baz":"qux","foo":["a",2,"c"]}"#),
        // A.10 adding a nested member object
        (#"{"foo":"bar"}"#, #"[{"op":"add","path":"/child","value":{"grandchild":{}}}]"#,
         #"{"foo":"bar","child":{"grandchild":{}}}"#),
        // A.11 ignoring unrecognized elements
        (#"{"foo":"bar"}"#, #"[{"op":"add","path":"/baz","value":"qux","xyz":123}]"#, #"{"foo":"bar","baz":"qux"}"#),
        // A.14 ~ escape ordering
        (#"{"/":9,"~1":10}"#, #"[{"op":"test","path":"/~01","value":10}]"#, #"{"/":9,"~1":10}"#),
        // A.16 adding an array value
        (#"{"foo":["bar"]}"#, #"[{"op":"add","path":"/foo/-","value":["abc","def"]}]"#, #"{"foo":["bar",["abc","def"]]}"#),
    ]

    /// Corners where implementations differ.
    static let edgeCases: [(String, String, String)] = [
        (#"{"foo":null}"#, #"[{"op":"add","path":"/foo","value":1}]"#, #"{"foo":1}"#),
        (#"{"foo":1}"#, #"[{"op":"add","path":"/0","value":"bar"}]"#, #"{"foo":1,"0":"bar"}"#),
        (#"{}"#, #"[{"op":"add","path":"/","value":1}]"#, #"{"":1}"#),
        (#"["foo","sil"]"#, #"[{"op":"add","path":"/2","value":"bar"}]"#, #"["foo","sil","bar"]"#),
        (#"{"1e0":"foo"}"#, #"[{"op":"test","path":"/1e0","value":"foo"}]"#, #"{"1e0":"foo"}"#),
        (#"{"foo":null}"#, #"[{"op":"move","from":"/foo","path":"/bar"}]"#, #"{"bar":null}"#),
        (#"{"foo":null}"#, #"[{"op":"copy","from":"/foo","path":"/bar"}]"#, #"{"foo":null,"bar":null}"#),
        (#"{"foo":1}"#, #"[{"op":"move","from":"/foo","path":"/foo"}]"#, #"{"foo":1}"#),
        (#"{"baz":[{"qux":"hello"}]}"#, #"[{"op":"move","from":"/baz/0/qux","path":"/baz/1"}]"#, #"{"baz":[{},"hello"]}"#),
        (#"[1,2,[3,[4,5]]]"#, #"[{"op":"add","path":"/2/1/-","value":6}]"#, #"[1,2,[3,[4,5,6]]]"#),
        (#"[1,2,3,4]"#, #"[{"op":"remove","path":"/1"},{"op":"remove","path":"/2"}]"#, #"[1,3]"#),
        (#"{"foo":1}"#, #"[{"op":"test","path":"","value":{"foo":1}}]"#, #"{"foo":1}"#),
    ]

    @Test(arguments: edgeCases)
    func appliesEdgeCases(document: String, patchText: String, expected: String) throws {
        #expect(try patch(patchText).apply(to: json(document)) == json(expected))
    }

    static let edgeFailures: [(String, String)] = [
        (#"["foo","bar"]"#, #"[{"op":"test","path":"/1e0","value":"bar"}]"#),
        (#"{"bar":[1,2]}"#, #"[{"op":"add","path":"/bar/-1","value":5}]"#),
        (#"["foo","sil"]"#, #"[{"op":"add","path":"/bar","value":42}]"#),
        (#"{"baz":[1,2]}"#, #"[{"op":"copy","from":"/baz/1e0","path":"/boo"}]"#),
        (#"{"baz":[1,2]}"#, #"[{"op":"move","from":"/baz/1e0","path":"/foo"}]"#),
        (#"[1]"#, #"[{"op":"remove","path":"/-"}]"#),
        (#"{"a":{"b":1}}"#, #"[{"op":"test","path":"/a","value":[1]}]"#),
    ]

    @Test(arguments: edgeFailures)
    func rejectsEdgeCases(document: String, patchText: String) throws {
        let operations = try patch(patchText)
        #expect(throws: JSONPatchError.self) { try operations.apply(to: json(document)) }
    }

    @Test(arguments: rfcSuccesses)
    func appliesRFCExamples(document: String, patchText: String, expected: String) throws {
        #expect(try patch(patchText).apply(to: json(document)) == json(expected))
    }

    /// Every kind of operation, with pointers that need escaping (as pointers, and in JSON first
    /// or second in an operation), written straight to text as the writer writes the patch's
    /// JSON value.
    @Test func writesTheTextOfItsJSON() throws {
        let operations = try patch(#"""
            [{"op":"add","path":"/a~1b/-","value":{"x":[1,"\"q\""]}},{"op":"remove","path":"/~0c"},
             {"op":"replace","path":"","value":null},{"op":"move","from":"/a","path":"/b"},
             {"op":"copy","from":"/a/0","path":"/d\"e"},{"op":"test","path":"/f","value":2.50},
             {"op":"remove","path":"/t\\ab\u0001/ü"},{"op":"move","from":"/\"m","path":"/n"}]
            """#)
        var text: [UInt8] = []
        operations.write(into: &text)
        #expect(text == JSONWriter.write(operations.json))
        var empty: [UInt8] = []
        JSONPatch().write(into: &empty)
        #expect(empty == Array("[]".utf8))
    }

    /// Written in place, each operation taken out and put back, a patch is the same afterwards
    /// and still applies as before; a copy made earlier is untouched.
    @Test func writingInPlaceLeavesThePatchAsItWas() throws {
        var operations = try patch(#"""
            [{"op":"add","path":"/a/-","value":{"x":[1]}},{"op":"replace","path":"/b","value":"y"},
             {"op":"move","from":"/c","path":"/d"},{"op":"test","path":"/b","value":"y"},{"op":"remove","path":"/a/0"}]
            """#)
        let before = operations
        var text: [UInt8] = []
        var copies: [JSONWrittenTexts.Copy] = []
        operations.write(into: &text, reusing: JSONWrittenTexts([]), copies: &copies)
        #expect(text == JSONWriter.write(before.json))
        #expect(operations == before)
        #expect(try operations.apply(to: json(#"{"a":[0],"b":"z","c":3}"#)) == json(#"{"a":[{"x":[1]}],"b":"y","d":3}"#))
        #expect(operations == before)
    }

    /// RFC 6902 Appendix A error cases, plus the errors the apiserver turns into failed pods.
    static let failures: [(String, String, String)] = [
        // A.9 testing a value: error
        (#"{"baz":"qux"}"#, #"[{"op":"test","path":"/baz","value":"bar"}]"#,
         #"operation 0: test /baz: test failed: the value at /baz is "qux", expected "bar""#),
        // A.12 adding to a nonexistent target
        (#"{"foo":"bar"}"#, #"[{"op":"add","path":"/baz/bat","value":"qux"}]"#,
         #"operation 0: add /baz/bat: path /baz/bat not found: no member "baz" at the document root"#),
        // A.15 comparing strings and numbers
        (#"{"/":9,"~1":10}"#, #"[{"op":"test","path":"/~01","value":"10"}]"#,
         #"operation 0: test /~01: test failed: the value at /~01 is 10, expected "10""#),
        (#"{"a":{}}"#, #"[{"op":"remove","path":"/a/b"}]"#,
         #"operation 0: remove /a/b: path /a/b not found: no member "b" at /a"#),
        (#"{"a":[1]}"#, #"[{"op":"remove","path":"/a/1"}]"#,
         #"operation 0: remove /a/1: path /a/1 not found: index 1 is out of range for the array of 1 elements at /a"#),
        (#"{"a":[1]}"#, #"[{"op":"add","path":"/a/2","value":0}]"#,
         #"operation 0: add /a/2: index 2 is out of range for adding to the array of 1 elements at /a"#),
        (#"{"a":[1]}"#, #"[{"op":"add","path":"/a/x","value":0}]"#,
         #"operation 0: add /a/x: "x" is not an array index at /a"#),
        (#"{"a":"s"}"#, #"[{"op":"add","path":"/a/x","value":0}]"#,
         #"operation 0: add /a/x: cannot add to a string at /a"#),
        (#"{"a":[1]}"#, #"[{"op":"replace","path":"/a/-","value":0}]"#,
         #"operation 0: replace /a/-: path /a/- not found: "-" names no existing element in the array at /a"#),
        (#"{"a":1}"#, #"[{"op":"replace","path":"/b","value":0}]"#,
         #"operation 0: replace /b: path /b not found: no member "b" at the document root"#),
        (#"{"a":1}"#, #"[{"op":"remove","path":""}]"#, #"operation 0: remove "": cannot remove the document root"#),
        (#"{"a":{"b":1}}"#, #"[{"op":"move","from":"/a","path":"/a/b/c"}]"#,
         "operation 0: move /a/b/c: cannot move /a into one of its own members"),
        (#"{"a":1}"#, #"[{"op":"copy","from":"/x","path":"/y"}]"#,
         #"operation 0: copy /y: path /x not found: no member "x" at the document root"#),
        (#"{"a":1}"#, #"[{"op":"add","path":"/b","value":2},{"op":"test","path":"/b","value":3}]"#,
         "operation 1: test /b: test failed: the value at /b is 2, expected 3"),
    ]

    @Test(arguments: failures)
    func reportsExactErrors(document: String, patchText: String, message: String) throws {
        let original = json(document)
        do throws(JSONPatchError) {
            _ = try patch(patchText).apply(to: original)
            Issue.record("patch applied")
        } catch {
            #expect(error.description == message)
        }
    }

    /// Malformed patches, RFC 6902 A.13 among them (our reader rejects its duplicate "op").
    static let malformed: [(String, String)] = [
        (#"{"op":"add"}"#, "a JSON patch must be an array, got an object"),
        (#"[1]"#, "operation 0: an operation must be an object, got a number"),
        (#"[{"path":"/a"}]"#, #"operation 0: missing "op""#),
        (#"[{"op":"remove","path":"/a"},{"op":"fly","path":"/a"}]"#, #"operation 1: unknown op "fly""#),
        (#"[{"op":1,"path":"/a"}]"#, #"operation 0: "op" must be a string, got a number"#),
        (#"[{"op":"add","path":"/a"}]"#, #"operation 0: missing "value""#),
        (#"[{"op":"remove"}]"#, #"operation 0: missing "path""#),
        (#"[{"op":"move","path":"/a"}]"#, #"operation 0: missing "from""#),
        (#"[{"op":"remove","path":5}]"#, #"operation 0: "path" must be a string, got a number"#),
        (#"[{"op":"remove","path":"a"}]"#, #"operation 0: "path": invalid JSON pointer "a": it must be empty or start with '/'"#),
    ]

    @Test(arguments: malformed)
    func rejectsMalformedPatches(patchText: String, message: String) {
        #expect(throws: JSONPatchError.self) { try patch(patchText) }
        do throws(JSONPatchError) {
            _ = try patch(patchText)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func rejectsDuplicateOpMembers() {
        #expect(throws: JSONParseError.self) {
            try JSONReader.parse(#"[{"op":"add","path":"/baz","value":"qux","op":"remove"}]"#)
        }
    }

    @Test func nullIsAValueNotAMissingOne() throws {
        #expect(try patch(#"[{"op":"add","path":"/a","value":null}]"#).apply(to: [:]) == ["a": nil])
    }

    @Test func addAndReplaceAtTheRootReplaceTheDocument() throws {
        #expect(try patch(#"[{"op":"add","path":"","value":[1]}]"#).apply(to: ["a": 1]) == [1])
        #expect(try patch(#"[{"op":"replace","path":"","value":{}}]"#).apply(to: [2]) == [:])
    }

    @Test func testComparesNumbersByValueAndObjectsWithoutOrder() throws {
        let document = json(#"{"n":1.0,"big":12345678901234567890,"o":{"a":1,"b":[1e2]}}"#)
        let passing = #"""
            [{"op":"test","path":"/n","value":1},{"op":"test","path":"/n","value":10e-1},
             {"op":"test","path":"/o","value":{"b":[100],"a":1.00}},{"op":"test","path":"/big","value":1234567890123456789e1}]
            """#
        #expect(try patch(passing).apply(to: document) == document)
        #expect(throws: JSONPatchError.self) {
            try patch(#"[{"op":"test","path":"/big","value":12345678901234567891}]"#).apply(to: document)
        }
        #expect(throws: JSONPatchError.self) { try patch(#"[{"op":"test","path":"/n","value":-1}]"#).apply(to: document) }
    }

    @Test func failedPatchLeavesTheDocumentUntouched() throws {
        let original = json(#"{"a":[1,2],"b":{"c":3}}"#)
        var document = original
        let failing = try patch(#"""
            [{"op":"remove","path":"/a/0"},{"op":"add","path":"/b/d","value":4},{"op":"remove","path":"/zzz"}]
            """#)
        #expect(throws: JSONPatchError.self) { document = try failing.apply(to: document) }
        #expect(document == original)
    }

    @Test func writesPatchesAsTheApiserverReadsThem() throws {
        let operations: JSONPatch = JSONPatch([
            .add(path: JSONPointer(tokens: ["metadata", "annotations", "tandem.io/status"]), value: "injected"),
            .remove(path: JSONPointer(tokens: ["spec", "containers", "1"])),
            .replace(path: JSONPointer(tokens: ["a"]), value: 1),
            .move(from: JSONPointer(tokens: ["b"]), path: JSONPointer(tokens: ["c"])),
            .copy(from: JSONPointer(tokens: ["c"]), path: JSONPointer(tokens: ["d"])),
            .test(path: JSONPointer(tokens: ["d"]), value: nil),
        ])
        let text = JSONWriter.string(operations.json)
        #expect(text == #"""
            [{"op":"add","path":"/metadata/annotations/tandem.io~1status","value":"injected"},\#
            {"op":"remove","path":"/spec/containers/1"},{"op":"replace","path":"/a","value":1},\#
            {"op":"move","from":"/b","path":"/c"},{"op":"copy","from":"/c","path":"/d"},\#
            {"op":"test","path":"/d","value":null}]
            """#)
        #expect(try JSONPatch(json: JSONReader.parse(text)) == operations)
    }
}
