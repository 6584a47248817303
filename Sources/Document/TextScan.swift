/// Questions about UTF-8 text answered eight bytes at a time, shared by the JSON reader, the
/// JSON writer and the table of known strings, so that each trick is written and checked once.
enum TextScan {
    /// The bytes of `word` that are a quote, a backslash or a control character, as their high
    /// bits. The lowest one is exact (the borrow tricks can only add false hits above a true
    /// one), so with the first byte in the low bits it says where a plain run ends.
    @inline(__always)
    static func escapeMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ value: UInt64) -> UInt64 { (value &- ones) & ~value & highs }
        let quote = hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "\""))))
        let backslash = hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "\\"))))
        let control = (word &- ones &* 0x20) & ~word & highs
        return quote | backslash | control
    }

    /// The end of the run from `start` that has no byte JSON escapes (a quote, a backslash, a
    /// control character), and whether the run is ASCII: eight bytes at a time, the word with the
    /// run's end telling where it is; the last few bytes one at a time.
    @inline(__always)
    static func plainRun(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> (end: Int, ascii: Bool) {
        let highs: UInt64 = 0x8080_8080_8080_8080
        let end = bytes.count
        var position = start
        var seen: UInt64 = 0
        if let base = bytes.baseAddress {
            while end - position >= 8 {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                let special = escapeMask(word)
                if special != 0 {
                    let length = special.trailingZeroBitCount >> 3
                    seen |= word & ((1 &<< UInt64(length &* 8)) &- 1)
                    return (position + length, seen & highs == 0)
                }
                seen |= word
                position += 8
            }
        }
        var highBits: UInt8 = seen & highs == 0 ? 0 : 0x80
        while position < end {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            highBits |= byte
            position += 1
        }
        return (position, highBits < 0x80)
    }

    /// The bytes of `word` that end a run of plain ASCII text in a JSON string (a quote, a
    /// backslash, a control character, or any byte of a character beyond ASCII), as their high
    /// bits. As in `escapeMask`, the lowest one is exact; knowing ASCII by where the run stops
    /// rather than by collecting every word's high bits leaves the loop fewer instructions.
    /// A quote and the control characters are found by one subtraction: with bit 1 flipped,
    /// they are the bytes below 0x21 (0x22 becomes 0x20, 0x00...0x1F stay among themselves).
    @inline(__always)
    static func asciiStopMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quoteOrControl = (word ^ (ones &* 0x02)) &- (ones &* 0x21)
        let backslash = (word ^ (ones &* UInt64(UInt8(ascii: "\\")))) &- ones
        return (quoteOrControl | backslash | word) & highs
    }

    /// The end of the run from `start` of ASCII bytes that JSON does not escape: eight bytes at
    /// a time, the last few one at a time. Where a byte beyond ASCII ends it, `plainRun` goes on.
    @inline(__always)
    static func asciiRun(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        let end = bytes.count
        var position = start
        if let base = bytes.baseAddress {
            while end &- position >= 8 {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                let stops = asciiStopMask(word)
                if stops != 0 { return position &+ stops.trailingZeroBitCount &>> 3 }
                position &+= 8
            }
        }
        while position < end {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { break }
            position &+= 1
        }
        return position
    }

    /// Whether two texts of the same length, at least eight bytes, are equal: eight bytes at a
    /// time, the last word ending where the texts end (overlapping the one before it), so that no
    /// byte is compared alone. Inlined into `KnownStrings`' lookup, where it was a third of it.
    @inline(__always)
    static func sameBytes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        precondition(a.count == b.count && a.count >= 8)
        let aBase = UnsafeRawPointer(a.baseAddress!)
        let bBase = UnsafeRawPointer(b.baseAddress!)
        let last = a.count &- 8
        var offset = 0
        while offset < last {
            if aBase.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                != bBase.loadUnaligned(fromByteOffset: offset, as: UInt64.self) { return false }
            offset &+= 8
        }
        return aBase.loadUnaligned(fromByteOffset: last, as: UInt64.self)
            == bBase.loadUnaligned(fromByteOffset: last, as: UInt64.self)
    }
}

extension TextScan {
    /// The value of decimal `digits` (at least one, nothing else), negated when `negative`; nil
    /// when out of range. One pass over the bytes: `Int(text)` is generic and cost hundreds of
    /// instructions, for every port an injection reads and every index on a patch's path.
    static func decimalValue(_ digits: UnsafeBufferPointer<UInt8>, negative: Bool) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowedAgain) = negative
                ? shifted.subtractingReportingOverflow(Int(digit)) : shifted.addingReportingOverflow(Int(digit))
            guard !overflowed, !overflowedAgain else { return nil }
            value = next
        }
        return value
    }
}

extension TextScan {
    /// A `String` of UTF-8 text the reader has already checked (`ascii` when it is all ASCII),
    /// made without checking it again. The standard library's initializers check it anew and
    /// fill a small string through a closure byte by byte, about a hundred instructions for a
    /// key such as "name"; here up to 15 ASCII bytes go straight into the two words of a small
    /// string, in the layout the library gives them itself (a test holds each length to it, bit
    /// for bit). Longer text is copied once into new storage through `UTF8Span`, which takes it
    /// as valid. `text` must lie in `bytes`, which may be read up to its end.
    @inline(__always)
    static func string(_ text: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>, ascii: Bool) -> String {
        let count = text.count
        guard ascii && count <= 15, let base = bytes.baseAddress else {
            return String(copying: UTF8Span(unchecked: UnsafeBufferPointer(rebasing: bytes[text]).span, isKnownASCII: ascii))
        }
        var low: UInt64 = 0
        var high: UInt64 = 0
        if bytes.count - text.lowerBound >= 16 {
            let start = UnsafeRawPointer(base + text.lowerBound)
            low = UInt64(littleEndian: start.loadUnaligned(as: UInt64.self))
            high = UInt64(littleEndian: start.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            if count < 8 {
                low &= (1 &<< UInt64(count &* 8)) &- 1
                high = 0
            } else {
                high &= (1 &<< UInt64((count &- 8) &* 8)) &- 1
            }
        } else {
            for offset in 0..<count {
                let byte = UInt64(base[text.lowerBound + offset]) &<< UInt64((offset & 7) &* 8)
                if offset < 8 { low |= byte } else { high |= byte }
            }
        }
        return string(bits: smallASCII(low: low, high: high, count: count))
    }

    /// The bits of the small string of `count` (at most 15) ASCII bytes, the first eight in
    /// `low`, the rest in `high`, each from its lowest byte, and zeros past the text: the top
    /// byte is 0xE (small, ASCII) and the length.
    @inline(__always)
    static func smallASCII(low: UInt64, high: UInt64, count: Int) -> (UInt64, UInt64) {
        (low, high | (0xE0 | UInt64(count)) &<< 56)
    }

    /// The two words of `text`, which `string(bits:)` makes it again from.
    @inline(__always)
    static func bits(of text: String) -> (UInt64, UInt64) {
        withUnsafeBytes(of: text) { $0.loadUnaligned(as: (UInt64, UInt64).self) }
    }

    /// `bits(of:)` of the string at `text`, read where it is, without a copy (a retain).
    @inline(__always)
    static func bits(at text: UnsafePointer<String>) -> (UInt64, UInt64) {
        UnsafeRawPointer(text).loadUnaligned(as: (UInt64, UInt64).self)
    }

    /// Whether the string of `bits` is small: its text, 15 bytes or fewer, kept in its bits, with
    /// its length and whether it is ASCII (bit 61 of the second word), so that two small strings
    /// are the same exactly when their bits are.
    @inline(__always)
    static func isSmall(bits: (UInt64, UInt64)) -> Bool {
        bits.1 & 1 &<< 61 != 0
    }

    /// The length in UTF-8 bytes of the small string of `bits`: the low half of its top byte.
    @inline(__always)
    static func smallCount(bits: (UInt64, UInt64)) -> Int {
        Int(truncatingIfNeeded: bits.1 &>> 56) & 0xF
    }

    /// Whether `text` is a literal's: immortal, so that its bits make a copy that needs no
    /// retain and whose release does nothing (the top bit of its second word, in the layout of
    /// Swift's strings on 64-bit platforms).
    static func isLiteral(_ text: String) -> Bool {
        bits(of: text).1 & 1 &<< 63 != 0
    }

    /// The string of these bits, a small string's or a literal's, neither of which is counted.
    /// Moved out of them, not cast from them: a cast string is copied, at the cost of a call to
    /// retain.
    @inline(__always)
    static func string(bits: (UInt64, UInt64)) -> String {
        var words = bits
        return withUnsafeMutableBytes(of: &words) { $0.baseAddress!.assumingMemoryBound(to: String.self).move() }
    }
}
