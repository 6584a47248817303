import Document
import Testing

/// The encoding of a text with copies encoded in advance (RFC 4648 vectors: WebhookTests).
struct Base64CopyTests {
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
