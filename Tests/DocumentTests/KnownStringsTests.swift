@testable import Document
import Testing

struct KnownStringsTests {
    func known(_ text: String) -> String? {
        Array(text.utf8).withUnsafeBufferPointer { KnownStrings.string(utf8: $0) }
    }

    @Test func findsEachKnownTextAsItself() {
        for text in ["terminationMessagePath", "preferredDuringSchedulingIgnoredDuringExecution", "kube-root-ca.crt",
                     "/var/run/secrets/kubernetes.io/serviceaccount", "app.kubernetes.io/name"] {
            #expect(known(text) == text)
        }
    }

    @Test func findsNothingElse() {
        // Same lengths and first or last eight bytes as known texts, prefixes, short and long texts.
        for text in ["terminationMessagePatH", "TerminationMessagePath", "terminationMessage", "failureThresholds",
                     "kube-root-ca.crs", "app.kubernetes.io/names", "restartPolicy", "", "x",
                     String(repeating: "a", count: 200), "terminationMessagéPath",
                     "preferredDuringSchedulingIgnoredDuringExecutionX"] {
            #expect(known(text) == nil)
        }
    }

    /// Texts are compared eight bytes at a time, the last word overlapping the one before: a
    /// text one byte away from a known one, at any position, is not it.
    @Test func findsNoTextOneByteAwayFromAKnownOne() {
        for text in KnownStrings.texts {
            var bytes = Array(text.utf8)
            for position in bytes.indices {
                bytes[position] ^= 0x01
                #expect(bytes.withUnsafeBufferPointer { KnownStrings.string(utf8: $0) } == nil, "\(text) at \(position)")
                bytes[position] ^= 0x01
            }
            #expect(bytes.withUnsafeBufferPointer { KnownStrings.string(utf8: $0) } == text)
        }
    }

    /// Known strings are handed out as copies of their bits, without a retain, which is right
    /// only for literals: the table refuses any other (a precondition as it is made).
    @Test func everyKnownTextIsALiteral() {
        for text in KnownStrings.texts {
            #expect(TextScan.isLiteral(text), "\(text)")
        }
        #expect(!TextScan.isLiteral(String(repeating: "a", count: 20)))
        #expect(!TextScan.isLiteral(String(decoding: Array("terminationMessagePath".utf8), as: UTF8.self)))
    }

    /// Longer texts are refused before the table is looked at, by this bound.
    @Test func longestLengthIsTheLongestKnownText() {
        #expect(KnownStrings.texts.map(\.utf8.count).max() == KnownStrings.longestLength)
    }

    @Test func readingAKnownTextGivesTheSameValue() throws {
        let text = #"{"terminationMessagePath":"/dev/termination-log","tolerationSeconds":300}"#
        let value = try JSONReader.parse(text)
        #expect(value == ["terminationMessagePath": "/dev/termination-log", "tolerationSeconds": 300])
        #expect(JSONWriter.write(value) == Array(text.utf8))
    }

    /// The YAML reader hands out known texts without typing them, which is right only while
    /// every one of them types as a string when written plain.
    @Test func everyKnownTextReadsAsAStringInYAML() throws {
        for text in KnownStrings.texts {
            let documents = try YAMLReader.read(Array("\(text): \(text)\n".utf8))
            #expect(documents.map(\.value) == [.object(JSONObject([(text, .string(text))]))])
            let typed = Array(text.utf8).withUnsafeBufferPointer { ScalarResolver.untagged($0, isPlain: true) }
            #expect(typed == .string(text))
        }
    }
}
