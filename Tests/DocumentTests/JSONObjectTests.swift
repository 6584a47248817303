import Document
import Testing

struct JSONObjectTests {
    /// Members an edit kept in place with the same value are not changed; edited, added, removed
    /// and moved ones are, and members that are only equal count as changed too.
    @Test func keysChangedSinceAnEarlierObject() throws {
        let earlier: JSONObject = ["name": "app", "env": [["name": "A"]], "ports": [], "image": "x", "args": ["a"]]
        var edited = earlier
        edited["image"] = "y"
        edited["command"] = ["run"]
        #expect(edited.keysChanged(since: earlier) == ["image", "command"])
        edited["env"] = nil
        #expect(edited.keysChanged(since: earlier) == ["ports", "env", "image", "ports", "args", "image", "command", "args"])
        let equalCopy: JSONObject = ["name": "app", "env": [["name": "A"]], "ports": [], "image": "x", "args": ["a"]]
        #expect(equalCopy.keysChanged(since: earlier) == ["env", "args"])
        #expect(earlier.keysChanged(since: earlier) == [])
    }

    /// `==` compares arrays by element and objects by member in any order, and tells the kinds
    /// apart even where their text is alike; equal values hash alike, stored together or apart.
    @Test func equalityIsJSONsAndAgreesWithHashing() {
        let long = "a string too long to be stored inline"
        let value: JSON = ["a": [1, .string(long), nil, true, ["k": [.number("2.5")]]], "b": ["c": "d", "e": []]]
        let apart: JSON = [
            "b": ["e": [], "c": "d"],
            "a": [1, .string(String(long.reversed().reversed())), nil, true, ["k": [.number("2.5")]]],
        ]
        #expect(value == apart)
        #expect(value.hashValue == apart.hashValue)
        let unequal: [JSON] = [
            ["a": [1, .string(long), nil, true, ["k": [.number("2.5")]]], "b": ["c": "d"]],
            ["a": [1, .string(long), nil, true, ["k": [.number("2.50")]]], "b": ["c": "d", "e": []]],
            ["a": [.string(long), 1, nil, true, ["k": [.number("2.5")]]], "b": ["c": "d", "e": []]],
            ["a": [1, .string(long), nil, false, ["k": [.number("2.5")]]], "b": ["c": "d", "e": []]],
            ["a": [1, .string(long), nil, true, ["k": [.number("2.5")]], nil], "b": ["c": "d", "e": []]],
            ["a": [1, .string(long), nil, true, ["k": [.number("2.5")]]], "b": ["c": "d", "e": [:]]],
        ]
        for other in unequal {
            #expect(value != other)
        }
        #expect(JSON.number("1") != JSON.string("1"))
        #expect(JSON.array([]) != JSON.object([:]))
        #expect(JSON.null != JSON.string("null"))
        // Strings compare as Swift's do: canonically equivalent ones are equal, and hash alike.
        #expect(JSON.string("\u{E9}") == JSON.string("e\u{301}"))
        #expect(JSON.string("\u{E9}").hashValue == JSON.string("e\u{301}").hashValue)
    }

    /// Members an edited copy keeps are settled at a glance; the others are still compared by key
    /// and value, whether the keys keep their order or not, and a value that differs before the
    /// keys part ways still makes the objects unequal.
    @Test func equalityOfEditedCopies() {
        let earlier: JSONObject = ["name": "app", "image": "x", "env": [["name": "A"]], "args": ["a"]]
        var edited = earlier
        edited["image"] = "y"
        #expect(edited != earlier)
        edited["image"] = .string(String("x".reversed()))
        #expect(edited == earlier)
        var reordered = JSONObject()
        for key in ["args", "env", "image", "name"] { reordered[key] = earlier[key] }
        #expect(reordered == earlier)
        reordered["image"] = "y"
        #expect(reordered != earlier)
        let ordered: JSONObject = ["a": 1, "b": 2, "c": 3]
        #expect(ordered != ["a": 2, "c": 3, "b": 2])
        #expect(ordered == ["a": 1, "c": 3, "b": 2])
        #expect(ordered != ["a": 1, "b": 2, "d": 3])
    }

    /// Members in order, as `(key, written value)` pairs, for comparing objects in order.
    private func pairs(_ object: JSONObject) -> [String] {
        object.members.map { "\($0.key)=\(JSONWriter.string($0.value))" }
    }

    /// A copy keeps its members whatever is done to the object it was copied from (a value set,
    /// a member added, one removed), and the other way round: storage is shared until one of
    /// them changes, then copied.
    @Test func takingAMemberLeavesNullAndLeavesCopiesAlone() {
        var object: JSONObject = ["pod": ["name": "web", "ports": [80, 443]], "uid": "1"]
        let copy = object
        let taken = object.modifyMember("pod") { $0.take() }
        #expect(taken == ["name": "web", "ports": [80, 443]])
        #expect(object == ["pod": nil, "uid": "1"])
        #expect(copy["pod"] == ["name": "web", "ports": [80, 443]])
        #expect(object.modifyMember("missing") { $0.take() } == nil)
    }

    @Test func copiesAreUnaffectedByEditsOfEachOther() {
        let long = String(repeating: "a value too long to be stored inline ", count: 3)
        var original: JSONObject = ["name": .string(long), "env": [["name": "A"]], "port": 80, "labels": ["k": "v"]]
        let before = pairs(original)
        var copy = original
        #expect(copy.sharesStorage(with: original))
        original["port"] = 81
        original["new"] = .string(long + "!")
        original["env"] = nil
        #expect(!copy.sharesStorage(with: original))
        #expect(pairs(copy) == before)
        #expect(pairs(original) == ["name=\"\(long)\"", "port=81", "labels={\"k\":\"v\"}", "new=\"\(long)!\""])
        let edited = pairs(original)
        let second = original
        copy["name"] = "short"
        copy.modifyMember("labels") { $0 = ["k": "w"] }
        var third = second
        third["labels"] = nil
        #expect(pairs(copy) == ["name=\"short\"", "env=[{\"name\":\"A\"}]", "port=80", "labels={\"k\":\"w\"}"])
        #expect(pairs(original) == edited)
        #expect(pairs(second) == edited)
        #expect(pairs(third) == ["name=\"\(long)\"", "port=81", "new=\"\(long)!\""])
    }

    /// Members removed from the front, the middle and the end leave the others in order; an
    /// object emptied this way equals a new empty one and takes members again.
    @Test func removingMembersKeepsTheRestInOrder() {
        var object: JSONObject = ["a": 1, "b": "two", "c": [3], "d": ["e": 4], "f": nil]
        let copy = object
        object["a"] = nil
        #expect(Array(object.keys) == ["b", "c", "d", "f"])
        object["c"] = nil
        #expect(Array(object.keys) == ["b", "d", "f"])
        object["f"] = nil
        #expect(Array(object.keys) == ["b", "d"])
        object["missing"] = nil
        #expect(pairs(object) == ["b=\"two\"", "d={\"e\":4}"])
        #expect(Array(copy.keys) == ["a", "b", "c", "d", "f"])
        object["b"] = nil
        object["d"] = nil
        #expect(object.isEmpty)
        #expect(object == JSONObject())
        object["z"] = true
        #expect(pairs(object) == ["z=true"])
        #expect(copy.count == 5)
    }

    /// Members added one at a time grow the storage past its room again and again, members in
    /// order; a copy taken on the way keeps what it had, and room reserved keeps the members.
    @Test func growingPastCapacityKeepsMembersAndCopies() {
        var object = JSONObject()
        var copies: [JSONObject] = []
        for index in 0..<100 {
            object["key\(index)"] = index % 2 == 0 ? .integer(index) : .string("value number \(index), stored apart")
            if index % 9 == 0 { copies.append(object) }
        }
        #expect(object.count == 100)
        #expect(Array(object.keys) == (0..<100).map { "key\($0)" })
        #expect(object["key99"] == "value number 99, stored apart")
        for (number, copy) in copies.enumerated() {
            #expect(Array(copy.keys) == (0...(number * 9)).map { "key\($0)" })
        }
        var reserved = copies[1]
        reserved.reserveCapacity(50)
        reserved.appendUnchecked(key: "extra", value: nil)
        #expect(Array(reserved.keys) == (0...9).map { "key\($0)" } + ["extra"])
        #expect(copies[1].count == 10)
    }

    /// Text made at run time, so stored apart and counted, unlike a literal's.
    private func counted(_ text: String) -> String {
        String(decoding: Array(text.utf8), as: UTF8.self)
    }

    /// Objects with every kind of key (small, literal, counted) and value (small, literal and
    /// counted strings and numbers, null, booleans, objects and arrays, empty or not), built and read.
    private func objectsOfEveryKind() throws -> [JSONObject] {
        let long = "a literal string too long to be small"
        let built: JSONObject = [
            "s": "v", "literal": .string(long), "counted": .string(counted(long + "!")),
            "n": 80, "literal number": .number("123456789012345678901234567890"),
            counted("a key made at run time, too long to be small"): .number(counted("98765432109876543210.5")),
            "null": nil, "true": true, "false": false, "empty object": [:], "empty array": [],
            "object": ["k": .string(counted(long + "?")), "inner": ["deep": .string(counted(long))]],
            "array": [.string(counted(long + "#")), 1, ["k": .string(counted(long))], [.string(counted(long))]],
        ]
        let text = #"{"name":"app","a value read from the text, too long":"\#(long)","port":8080,"#
            + #""big":12345678901234567890.25,"on":true,"off":null,"env":[{"name":"A","value":"\#(long)"}],"#
            + #""labels":{"k":"\#(long)","l":"v"},"args":["--x","\#(long)"],"none":[],"nothing":{}}"#
        guard case .object(let read) = try JSONReader.parse(text) else { throw JSONObjectTestError.notAnObject }
        return [built, read]
    }

    private enum JSONObjectTestError: Error { case notAnObject }

    /// A copy of shared members, made when one of the objects holding them changes, holds each
    /// kind of key and value on its own: nested containers edited in one do not change in the
    /// other, and once the original is gone (its storage freed, then reused) the copy still has
    /// all it had.
    @Test func aCopyOfSharedMembersHoldsEveryKindOfValueOnItsOwn() throws {
        for var original in try objectsOfEveryKind() {
            let written = JSONWriter.string(.object(original))
            var copy = original
            copy.appendUnchecked(key: "added", value: 1)
            #expect(!copy.sharesStorage(with: original))
            copy["added"] = nil
            #expect(copy == original)
            #expect(JSONWriter.string(.object(copy)) == written)
            let keys = Array(original.keys)
            var second = original
            second[keys[0]] = .string(counted("a value set in a second copy, long"))
            for key in keys {
                copy.modifyMember(key) { value in
                    if case .object(var object) = value {
                        object["edited"] = true
                        value = .object(object)
                    } else if case .array(var array) = value {
                        array.append("edited")
                        value = .array(array)
                    }
                }
            }
            #expect(JSONWriter.string(.object(original)) == written)
            let edited = JSONWriter.string(.object(copy))
            #expect(edited != written)
            #expect(Array(second.keys) == keys)
            original = JSONObject()
            second = JSONObject()
            // Storage of the sizes just freed, filled with other text.
            let reuse = (0..<200).map { counted(String(repeating: "x", count: $0 % 90)) }
            #expect(reuse.count == 200)
            #expect(JSONWriter.string(.object(copy)) == edited)
        }
    }

    /// An object the reader built is edited as any other: its copy and a second reading of the
    /// text keep the members as read.
    @Test func anObjectTheReaderBuiltIsEditedApartFromItsCopies() throws {
        let text = #"{"name":"app","spec":{"containers":[{"name":"c"}],"a":"a string long enough to be stored apart"},"n":1}"#
        guard case .object(let read) = try JSONReader.parse(text) else {
            Issue.record("not an object")
            return
        }
        var edited = read
        edited.modifyMember("spec") { spec in
            guard case .object(var object) = spec else { return }
            object["a"] = nil
            object["b"] = [true]
            spec = .object(object)
        }
        edited["n"] = nil
        edited["m"] = 2
        #expect(JSONWriter.string(.object(read)) == text)
        #expect(try JSON.object(read) == JSONReader.parse(text))
        #expect(JSONWriter.string(.object(edited)) == #"{"name":"app","spec":{"containers":[{"name":"c"}],"b":[true]},"m":2}"#)
    }
}

struct JSONIntValueTests {
    /// Every integer read from JSON (ports, seconds, config values) goes through `intValue`, which
    /// must read numbers as `Int(text)` does.
    @Test(arguments: ["8080", "0", "-0", "+5", "-42", "007", "65535", "9223372036854775807", "-9223372036854775808",
                      "9223372036854775808", "-9223372036854775809", "99999999999999999999", "", "+", "-", "1e3", "1.0",
                      "0x10", " 80", "80 ", "--1", "+-1", "١٢",
                      "+0000000000000000008080", "-000000000000000000042"])
    func readsIntegersAsIntDoes(text: String) {
        #expect(JSON.number(text).intValue == Int(text))
    }

    @Test func onlyNumbersHaveAnIntValue() {
        #expect(JSON.string("80").intValue == nil)
        #expect(JSON.bool(true).intValue == nil)
    }
}

struct JSONLendingLookupTests {
    /// `withValue(forKey:)` looks at the member a lookup would return, and is nil where the
    /// lookup is, or where the look finds nothing.
    @Test func withValueLooksAtTheMemberTheSubscriptReturns() {
        let object: JSONObject = ["name": "app", "port": 8080, "image": .null]
        #expect(object.withValue(forKey: "name", \.stringValue) == "app")
        #expect(object.withValue(forKey: "port", \.intValue) == 8080)
        #expect(object.withValue(forKey: "image") { $0.isNull } == true)
        #expect(object.withValue(forKey: "missing") { _ in true } == nil)
        #expect(object.withValue(forKey: "port", \.stringValue) == nil)
        #expect(object.withValue(forKey: "nam", \.stringValue) == nil)
    }

    /// `withMember` agrees with `json[key]`: nil for a missing key and for a value that is not an object.
    @Test func withMemberAgreesWithTheSubscript() {
        let pod: JSON = ["spec": ["containers": [["name": "app"]]]]
        #expect(pod.withMember("spec") { $0.withMember("containers") { $0.arrayValue?.count } } == 1)
        #expect(pod.withMember("metadata") { _ in true } == nil)
        #expect(JSON.string("spec").withMember("spec") { _ in true } == nil)
        #expect(JSON.array([["spec": 1]]).withMember("spec") { _ in true } == nil)
    }
}
