import Testing
@testable import Document

@Suite struct YAMLReaderTests {
    private func value(_ text: String) throws -> JSON {
        try #require(try YAMLReader.read(text).first).value
    }

    @Test(arguments: [
        ("a: yes", JSON.bool(true)), ("a: On", .bool(true)), ("a: n", .bool(false)), ("a: FALSE", .bool(false)),
        ("a: ~", .null), ("a:", .null), ("a: Null", .null),
        ("a: 8080", .number("8080")), ("a: -12", .number("-12")), ("a: +5", .number("5")), ("a: 0x1F", .number("31")),
        ("a: 0o17", .number("15")), ("a: 017", .number("15")), ("a: 0b101", .number("5")), ("a: 1_000", .number("1000")),
        ("a: 1.5", .number("1.5")), ("a: 1e3", .number("1e3")), ("a: .5", .number("0.5")), ("a: 08", .number("8")),
        ("a: 1.2.3", .string("1.2.3")), ("a: '8080'", .string("8080")), ("a: \"yes\"", .string("yes")),
        ("a: !!str 42", .string("42")), ("a: !!int \"7\"", .number("7")), ("a: 2001-12-14", .string("2001-12-14")),
        ("a: .inf", .string(".inf")), ("a: 100m", .string("100m")), ("a: 0.5Gi", .string("0.5Gi")),
    ])
    func scalarsAreTypedLikeKubernetesTooling(source: String, expected: JSON) throws {
        #expect(try value(source) == ["a": expected])
    }

    /// Every spelling of null and the booleans, and their near misses (another case mix, a byte
    /// more or less, a NUL after the word), which stay strings or are refused under `!!bool`.
    @Test func everyNullAndBooleanSpellingAndNoOther() throws {
        let words: [(String, JSON)] = [
            ("~", .null), ("null", .null), ("Null", .null), ("NULL", .null),
            ("y", true), ("Y", true), ("yes", true), ("Yes", true), ("YES", true), ("true", true), ("True", true),
            ("TRUE", true), ("on", true), ("On", true), ("ON", true),
            ("n", false), ("N", false), ("no", false), ("No", false), ("NO", false), ("false", false), ("False", false),
            ("FALSE", false), ("off", false), ("Off", false), ("OFF", false),
        ]
        for (word, expected) in words {
            #expect(try value("a: \(word)") == ["a": expected], "\(word)")
            #expect(try value("a: '\(word)'") == ["a": .string(word)], "\(word)")
        }
        for word in ["nul", "nulls", "NuLL", "yES", "tRUE", "yess", "onn", "of", "offf", "falsey", "truely", "~~", "nO"] {
            #expect(try value("a: \(word)") == ["a": .string(word)], "\(word)")
        }
        #expect(try value("a: !!bool \"yes\"") == ["a": true])
        #expect(throws: YAMLError.self) { try value("a: !!bool \"yes\\0\"") }
        #expect(throws: YAMLError.self) { try value("a: !!bool \"\\0yes\"") }
    }

    @Test func anchorsAliasesAndMergeKeys() throws {
        let text = """
        base: &base {cpu: 100m, memory: 64Mi}
        other: &other {memory: 1Gi, gpu: 1}
        a: *base
        b:
          <<: [*base, *other]
          cpu: 2
        """
        let doc = try value(text)
        #expect(doc["a"] == ["cpu": "100m", "memory": "64Mi"])
        #expect(doc["b"] == ["cpu": 2, "memory": "64Mi", "gpu": 1])
        #expect(doc["b"]?.objectValue?.keys == ["cpu", "memory", "gpu"])
    }

    @Test func nodesCarryTheirValuesThroughAliasesAndMergeKeys() throws {
        let text = """
        base: &base {cpu: 100m, memory: 64Mi}
        b:
          <<: [*base, {gpu: 1}]
          cpu: 2
        c: [x, *base]
        """
        let root = try #require(try YAMLReader.read(text).first?.root)
        let merged = root.deepestNode(along: ["b", "memory"])
        #expect(merged.json == "64Mi")
        #expect(merged.start == SourceMark(offset: 32, line: 1, column: 33))
        #expect(root.deepestNode(along: ["b", "gpu"]).json == 1)
        #expect(root.deepestNode(along: ["b", "cpu"]).json == 2)
        #expect(root.deepestNode(along: ["c", "1", "cpu"]).json == "100m")
        guard case .mapping(let keys, let values) = root.deepestNode(along: ["b"]).content else {
            Issue.record("not a mapping")
            return
        }
        #expect(keys.map(\.json) == ["<<", "cpu"])
        #expect(values.map(\.json) == [[["cpu": "100m", "memory": "64Mi"], ["gpu": 1]], 2])
    }

    @Test func keysKeepTheirOrderAndNonStringKeysBecomeText() throws {
        let doc = try value("z: 1\na: 2\n8080: x\ntrue: y\n")
        #expect(doc.objectValue?.keys == ["z", "a", "8080", "true"])
    }

    @Test func duplicateKeyIsAnErrorAtTheSecondKey() {
        #expect(throws: YAMLError(mark: SourceMark(offset: 13, line: 3, column: 1), message: "duplicate key \"name\"")) {
            try YAMLReader.read("name: a\nx: 1\nname: b\n")
        }
    }

    @Test func syntaxErrorNamesLineAndColumn() {
        do {
            _ = try YAMLReader.read("a: 1\nb: [1, 2\nc: 3\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.mark.line == 3)
            #expect(error.description.hasPrefix("3:"))
            #expect(error.message.contains("flow sequence"))
        }
    }

    @Test func unknownAliasIsAnError() {
        #expect(throws: YAMLError.self) { try YAMLReader.read("a: *nowhere\n") }
    }

    @Test func documentRangesCoverTheWholeStream() throws {
        let text = "# head\na: 1\n---\n# two\nb: 2\n...\n---\n---\nc: [1]\n# tail\n"
        let documents = try YAMLReader.read(text)
        #expect(documents.count == 4)
        let bytes = Array(text.utf8)
        #expect(documents.flatMap { bytes[$0.range] } == bytes)
        #expect(documents.map(\.value) == [["a": 1], ["b": 2], .null, ["c": [1]]])
    }

    @Test func aStreamReadInPiecesCutAtDocumentStartsIsTheSameStream() throws {
        let text = "# head\na: 1\n---\n# two\nb: |\n  x\n--- |\n  wörld\n...\n---\nc: [1]\n# tail\n"
        let bytes = Array(text.utf8)
        var starts: [Int] = []
        while let start = YAMLReader.documentStart(atOrAfter: (starts.last ?? 0) + 1, in: bytes) { starts.append(start) }
        #expect(starts == [12, 31, 50])
        let whole = try YAMLReader.read(bytes)
        var pieces: [YAMLDocument] = []
        for range in zip([0] + starts, starts + [bytes.count]).map({ $0..<$1 }) {
            try YAMLReader.read(bytes, in: range) { pieces.append($0) }
        }
        #expect(pieces.map(\.value) == whole.map(\.value))
        #expect(pieces.flatMap { bytes[$0.range] } == bytes)
        #expect(pieces.compactMap { $0.root?.start.offset } == whole.compactMap { $0.root?.start.offset })
    }

    @Test func aDocumentIsNotCutFromItsDirectives() {
        let bytes = Array("a: 1\n...\n%YAML 1.1\n# c\n---\nb: 2\n--- # d\nc: 3\n".utf8)
        #expect(YAMLReader.documentStart(atOrAfter: 0, in: bytes) == 32)
        #expect(YAMLReader.documentStart(atOrAfter: 33, in: bytes) == nil)
        #expect(YAMLReader.documentStart(atOrAfter: 3, in: Array("# c\n---\na: 1\n".utf8)) == 4)
    }

    @Test func nonASCIITextKeepsByteOffsets() throws {
        let text = "a: \"héllo wörld\"\nb: 日本\nc: x\n"
        let root = try #require(try YAMLReader.read(text).first?.root)
        guard case .mapping(let keys, let values) = root.content else { Issue.record("not a mapping"); return }
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[values[1].start.offset..<values[1].end], as: UTF8.self) == "日本")
        #expect(String(decoding: bytes[keys[2].start.offset..<keys[2].end], as: UTF8.self) == "c")
        #expect(keys[2].start.line == 3)
    }

    @Test func pointerLeadsBackToTheSourcePlace() throws {
        let text = "spec:\n  template:\n    metadata:\n      annotations:\n        tandem.io/lifecycle: nope\n"
        let root = try #require(try YAMLReader.read(text).first?.root)
        let node = root.deepestNode(along: ["spec", "template", "metadata", "annotations", "tandem.io/lifecycle"])
        #expect(node.start == SourceMark(offset: 80, line: 5, column: 30))
        #expect(root.deepestNode(along: ["spec", "missing", "x"]).start.line == 2)
    }

    @Test func excessiveNestingIsRefused() {
        let text = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: YAMLError.self) { try YAMLReader.read(text) }
    }
}

@Suite struct YAMLWriterTests {
    @Test func stringsThatLookLikeOtherTypesAreQuoted() throws {
        let tricky: [String] = ["8080", "yes", "on", "null", "~", "", "1e3", "0x10", "2024-01-01", "true", "<<",
                                "-1", ".5", "a: b", "- x", "#c", "{\"a\":1}", " lead", "trail ", "multi\nline\n", "tab\there",
                                "quote'\"", "日本", "*star", "&amp", "!bang", "%pct", "@at", "`tick"]
        let object = JSON.object(JSONObject(tricky.enumerated().map { ("k\($0.offset)", JSON.string($0.element)) }))
        let written = YAMLWriter.write(object)
        let back = try #require(try YAMLReader.read(written).first).value
        #expect(back == object)
        let text = String(decoding: written, as: UTF8.self)
        #expect(text.contains("k0: \"8080\"\n"))
        #expect(text.contains("k1: \"yes\"\n"))
    }

    @Test func layoutMatchesKubectl() {
        let pod: JSON = ["metadata": ["name": "web", "labels": [:]], "spec": ["containers": [["name": "app", "ports": [["containerPort": 80]]]], "volumes": []]]
        let text = String(decoding: YAMLWriter.write(pod), as: UTF8.self)
        #expect(text == """
        metadata:
          name: web
          labels: {}
        spec:
          containers:
          - name: app
            ports:
            - containerPort: 80
          volumes: []

        """)
    }
}
