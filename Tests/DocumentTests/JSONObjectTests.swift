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
}
