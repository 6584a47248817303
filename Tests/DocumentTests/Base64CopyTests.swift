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
                let reused = Self.encode(text, reusing: [(lead, 0), (lead + length + lead, 1)], of: [pieceEncodings, encodings])
                #expect([9] + reused == plain, "lead \(lead), length \(length)")
            }
        }
    }

    /// Written into room of its exact length, the encoding is the one written six bits at a time,
    /// for every length through the twelve-byte steps and their tails and for random texts, with
    /// and without copies encoded in advance; nothing past the room is touched.
    @Test func writesIntoExactRoomAsTheDefinitionDoes() {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<20).map { _ in (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        let patterned = (0...100).map { length in (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ length &* 151) } }
        for bytes in patterned + random {
            let expected = Self.definition(bytes)
            let copyStart = bytes.count / 3
            let copy = Array(bytes[copyStart..<(copyStart + bytes.count / 2)])
            let encodings = [Base64.Encodings(copy)]
            for copies in [[], [(start: copyStart, entry: 0)]] {
                #expect(Base64.encodedCount(bytes.count) == expected.count)
                var room = [UInt8](repeating: 0xAA, count: expected.count + 4)
                let written = bytes.withUnsafeBufferPointer { input in
                    room.withUnsafeMutableBufferPointer { room in
                        Base64.encode(input, reusing: copies, of: encodings, to: UnsafeMutableBufferPointer(rebasing: room[..<expected.count]))
                    }
                }
                #expect(written == expected.count)
                #expect(Array(room[..<expected.count]) == expected, "length \(bytes.count), \(copies.count) copies")
                #expect(room[expected.count...].allSatisfy { $0 == 0xAA })
            }
        }
    }

    /// The encoding written into room of its exact length.
    private static func encode(_ bytes: [UInt8], reusing copies: [(start: Int, entry: Int)],
                               of encodings: [Base64.Encodings]) -> [UInt8] {
        bytes.withUnsafeBufferPointer { input in
            Array(unsafeUninitializedCapacity: Base64.encodedCount(bytes.count)) { out, count in
                count = Base64.encode(input, reusing: copies, of: encodings, to: out)
            }
        }
    }

    /// The encoding written out six bits at a time (RFC 4648 §4).
    private static func definition(_ bytes: [UInt8]) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var bits: [Bool] = bytes.flatMap { byte in (0..<8).map { byte & (0x80 >> $0) != 0 } }
        while bits.count % 6 != 0 { bits.append(false) }
        var encoded = stride(from: 0, to: bits.count, by: 6).map { start in
            alphabet[bits[start..<start + 6].reduce(0) { $0 << 1 | ($1 ? 1 : 0) }]
        }
        while encoded.count % 4 != 0 { encoded.append(UInt8(ascii: "=")) }
        return encoded
    }
}
