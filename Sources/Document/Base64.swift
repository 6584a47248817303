/// Standard base64 (RFC 4648 §4, padded): how AdmissionReview patches, Secret data and
/// `caBundle` are carried in JSON.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: encodedCount(bytes.count)) { out in
            bytes.withUnsafeBufferPointer { encode($0, to: out) }
        }
    }

    /// Appends the encoding to `buffer`.
    public static func encode(_ bytes: [UInt8], appendingTo buffer: inout [UInt8]) {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: encodedCount(bytes.count)))
        buffer.withUnsafeMutableBufferPointer { buffer in
            bytes.withUnsafeBufferPointer { input in
                _ = encode(input, to: UnsafeMutableBufferPointer(rebasing: buffer[start...]))
            }
        }
    }

    /// A text encoded in advance from each of the three places in a 3-byte group where a copy of
    /// it can start, so that a copy inside a larger text need not be encoded again.
    public struct Encodings: Sendable {
        /// `fromOffset[k]`: the encoding of the whole groups from byte `k` on (k = 0, 1, 2).
        let fromOffset: [[UInt8]]

        public init(_ text: [UInt8]) {
            fromOffset = (0..<3).map { offset in
                let groupBytes = max(0, text.count - offset) / 3 * 3
                guard groupBytes > 0 else { return [] }
                return Array(unsafeUninitializedCapacity: groupBytes / 3 * 4) { out, initialized in
                    initialized = text.withUnsafeBufferPointer { text in
                        Base64.encode(UnsafeBufferPointer(rebasing: text[offset..<(offset + groupBytes)]), to: out)
                    }
                }
            }
        }
    }

    /// Writes the encoding of `input` into `out`, which has room for `encodedCount(input.count)`
    /// bytes, and returns its length. Each of `copies` (in order, not overlapping) starts at
    /// `start` and is the text `encodings[entry]` were made from: the whole groups inside a copy
    /// are copied rather than encoded. The webhook's patches are mostly the containers it adds, the
    /// same text in every patch; it writes the encoding straight into its answer, made at its
    /// exact size, rather than filling the room first and appending.
    public static func encode(_ input: UnsafeBufferPointer<UInt8>, reusing copies: [(start: Int, entry: Int)],
                              of encodings: [Encodings], to out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        // Both always at the start of a group.
        var read = 0, written = 0
        // The encodings are read where they are stored, not copied out (a retain and a release
        // each): the caller holds them for the whole call.
        copies.withUnsafeBufferPointer { copies in
            encodings.withUnsafeBufferPointer { encodings in
                for copy in copies {
                    let offset = (3 - copy.start % 3) % 3
                    let groupStart = copy.start + offset
                    let encoded = encodings[copy.entry].fromOffset.withUnsafeBufferPointer { $0[offset].withUnsafeBufferPointer { $0 } }
                    guard groupStart >= read, !encoded.isEmpty else { continue }
                    written += encode(UnsafeBufferPointer(rebasing: input[read..<groupStart]),
                                      to: UnsafeMutableBufferPointer(rebasing: out[written...]))
                    written += UnsafeMutableBufferPointer(rebasing: out[written...]).initialize(fromContentsOf: encoded)
                    read = groupStart + encoded.count / 4 * 3
                }
            }
        }
        return written + encode(UnsafeBufferPointer(rebasing: input[read...]), to: UnsafeMutableBufferPointer(rebasing: out[written...]))
    }

    /// The length of the encoding of `count` bytes.
    public static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Writes the encoding into `out`, which has room for exactly it; returns its length.
    /// The two characters of every 12 bits, first one in the low byte: three input bytes take
    /// two lookups and two stores instead of four of each.
    private static let pairs: [UInt16] = (0..<4096).map { UInt16(alphabet[$0 >> 6]) | UInt16(alphabet[$0 & 63]) << 8 }

    private static func encode(_ input: UnsafeBufferPointer<UInt8>, to out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        guard let source = UnsafeRawPointer(input.baseAddress), let target = UnsafeMutableRawPointer(out.baseAddress) else {
            return 0
        }
        // Everything inside the one closure, so that the positions stay in registers.
        return pairs.withUnsafeBufferPointer { pairs in
            var read = 0, written = 0
            // Six bytes a step from one eight-byte load, eight characters in one store; two steps
            // a turn.
            while read + 14 <= input.count {
                let n = UInt64(bigEndian: source.loadUnaligned(fromByteOffset: read, as: UInt64.self))
                let m = UInt64(bigEndian: source.loadUnaligned(fromByteOffset: read + 6, as: UInt64.self))
                let first = UInt64(pairs[Int(n >> 52)]) | UInt64(pairs[Int(n >> 40 & 0xFFF)]) << 16
                    | UInt64(pairs[Int(n >> 28 & 0xFFF)]) << 32 | UInt64(pairs[Int(n >> 16 & 0xFFF)]) << 48
                let second = UInt64(pairs[Int(m >> 52)]) | UInt64(pairs[Int(m >> 40 & 0xFFF)]) << 16
                    | UInt64(pairs[Int(m >> 28 & 0xFFF)]) << 32 | UInt64(pairs[Int(m >> 16 & 0xFFF)]) << 48
                target.storeBytes(of: first.littleEndian, toByteOffset: written, as: UInt64.self)
                target.storeBytes(of: second.littleEndian, toByteOffset: written + 8, as: UInt64.self)
                read += 12
                written += 16
            }
            while read + 3 <= input.count {
                let n = Int(input[read]) << 16 | Int(input[read + 1]) << 8 | Int(input[read + 2])
                target.storeBytes(of: pairs[n >> 12].littleEndian, toByteOffset: written, as: UInt16.self)
                target.storeBytes(of: pairs[n & 0xFFF].littleEndian, toByteOffset: written + 2, as: UInt16.self)
                read += 3
                written += 4
            }
            let rest = input.count - read
            if rest > 0 {
                // The last one or two bytes with zeros after them, then padding.
                let n = Int(input[read]) << 16 | (rest == 2 ? Int(input[read + 1]) << 8 : 0)
                target.storeBytes(of: pairs[n >> 12].littleEndian, toByteOffset: written, as: UInt16.self)
                target.storeBytes(of: pairs[n & 0xFFF].littleEndian, toByteOffset: written + 2, as: UInt16.self)
                if rest == 1 { out[written + 2] = UInt8(ascii: "=") }
                out[written + 3] = UInt8(ascii: "=")
                written += 4
            }
            return written
        }
    }

    /// Nil for anything that is not padded standard base64.
    public static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            var n: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let byte = input[index + offset]
                let value: UInt32
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
                case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a") + 26)
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0") + 52)
                case UInt8(ascii: "+"): value = 62
                case UInt8(ascii: "/"): value = 63
                case UInt8(ascii: "=") where index + 4 == input.count && offset >= 2:
                    padding += 1
                    value = 0
                default: return nil
                }
                if padding > 0 && byte != UInt8(ascii: "=") { return nil }
                n = n << 6 | value
            }
            out.append(UInt8(n >> 16 & 255))
            if padding < 2 { out.append(UInt8(n >> 8 & 255)) }
            if padding < 1 { out.append(UInt8(n & 255)) }
            index += 4
        }
        return out
    }
}
