@testable import Document
import Testing

struct TextScanTests {
    /// The string made from checked text is the string the standard library makes of it, bit for
    /// bit: the small ASCII strings put together by hand are only right while their layout is
    /// the library's own, and the long ones need the same flags (ASCII or not).
    @Test func makesTheStringsTheLibraryMakes() {
        let texts = (0...40).map { length in String((0..<length).map { Character(Unicode.Scalar(UInt8(0x21 + ($0 * 7) % 94))) }) }
            + ["é", "a\u{301}", "ascii then é", "中文字符", "😀 and more text than fits inline", "\u{7F}", "\u{0}\u{1F}"]
        for text in texts {
            let utf8 = Array(text.utf8)
            let ascii = utf8.allSatisfy { $0 < 0x80 }
            let expected = String(decoding: utf8, as: UTF8.self)
            // What the readers ask of a string's bits, answered as the library made it.
            let bits = TextScan.bits(of: expected)
            #expect(TextScan.isSmall(bits: bits) == (utf8.count <= 15))
            if utf8.count <= 15 { #expect(TextScan.smallCount(bits: bits) == utf8.count) }
            let bitsInPlace = withUnsafePointer(to: expected) { TextScan.bits(at: $0) }
            #expect(bitsInPlace.0 == bits.0 && bitsInPlace.1 == bits.1)
            // The text at the end of the bytes, and followed by more than 16 of them.
            for padding in [0, 1, 20] {
                let bytes = utf8 + Array(repeating: UInt8(ascii: "x"), count: padding)
                let made = bytes.withUnsafeBufferPointer { TextScan.string(0..<utf8.count, in: $0, ascii: ascii) }
                #expect(made == expected)
                #expect(Array(made.utf8) == utf8)
                #expect(made.hashValue == expected.hashValue)
                // Small strings are all in their two words; others have their count and flags
                // in the first (the second points at their storage).
                let (madeFirst, madeSecond) = unsafeBitCast(made, to: (UInt64, UInt64).self)
                let (expectedFirst, expectedSecond) = unsafeBitCast(expected, to: (UInt64, UInt64).self)
                #expect(madeFirst == expectedFirst)
                if utf8.count <= 15 { #expect(madeSecond == expectedSecond) }
            }
        }
    }

    /// `asciiRun` ends where `plainRun` does, or before, at the first byte beyond ASCII: for each
    /// byte that ends a run (or none), at each place in and around a word, from each start. With
    /// the bytes at the edges of `asciiStopMask`'s subtractions: 0x02 and 0x03 (0x00 and 0x01 with
    /// bit 1 flipped), `#` (flipped, 0x21: the lowest byte not taken), `[` and `]` (beside the backslash).
    @Test func asciiRunStopsWhereThePlainRunStopsOrAtTheFirstByteBeyondASCII() {
        let stoppers: [UInt8?] = [nil, UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x00, 0x02, 0x03, 0x1F, 0x80, 0xC3, 0xFF]
        let fillers: [UInt8] = [UInt8(ascii: "a"), 0x20, 0x7F, UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "["),
                                UInt8(ascii: "]")]
        for length in 0...20 {
            for place in 0..<max(length, 1) {
                for stopper in stoppers {
                    for filler in fillers {
                        var bytes = [UInt8](repeating: filler, count: length)
                        if let stopper, place < length { bytes[place] = stopper }
                        // A second stopper further on must not matter.
                        if place + 3 < length { bytes[place + 3] = UInt8(ascii: "\"") }
                        bytes.withUnsafeBufferPointer { buffer in
                            for start in 0...min(place, length) {
                                let (end, ascii) = TextScan.plainRun(in: buffer, from: start)
                                var expected = start
                                while expected < end && buffer[expected] < 0x80 { expected += 1 }
                                #expect(TextScan.asciiRun(in: buffer, from: start) == expected)
                                #expect(ascii == (expected == end))
                            }
                        }
                    }
                }
            }
        }
    }
}
