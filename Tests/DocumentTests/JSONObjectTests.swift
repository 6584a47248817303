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
