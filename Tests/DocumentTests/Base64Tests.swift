import Document
import Testing

struct Base64Tests {
    @Test func encodesAsRFC4648() {
        let cases: [(String, String)] = [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"), ("the quick brown fox jumps over", "dGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVy"),
        ]
        for (text, encoded) in cases {
            #expect(Base64.encode(Array(text.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(text.utf8))
        }
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        #expect(Base64.decode(Base64.encode(bytes)) == bytes)
    }

    /// Copies encoded in advance give the same text as encoding all, wherever they start and
    /// however long they are.
    @Test func reusesEncodedCopiesAtEveryOffset() {
        let copy = (0..<40).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 65) }
        let other = (0..<9).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 97) }
        let encodings = Base64.Encodings(copy)
        for lead in 0..<5 {
            for length in [0, 1, 2, 3, 4, 5, 39, 40] {
                let piece = Array(copy.prefix(length))
                let pieceEncodings = Base64.Encodings(piece)
                let text = Array(other.prefix(lead)) + piece + other.prefix(lead) + copy + other.prefix(length % 4)
                var plain: [UInt8] = [9]
                Base64.encode(text, appendingTo: &plain)
                var reused: [UInt8] = [9]
                Base64.encode(text, appendingTo: &reused,
                              reusing: [(lead, pieceEncodings), (lead + length + lead, encodings)])
                #expect(reused == plain, "lead \(lead), length \(length)")
            }
        }
    }
}
