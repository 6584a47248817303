/// An RFC 6901 JSON Pointer: the path of a value inside a document, as JSON Patch uses it.
///
/// Tokens are kept unescaped (`metadata`, `annotations`, `example.com/inject`); `description`
/// escapes `~` as `~0` and `/` as `~1`, which annotation and label keys need.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    public var tokens: [String]

    /// The pointer to the whole document ("").
    public static let root = JSONPointer(tokens: [])

    public init(tokens: [String]) {
        self.tokens = tokens
    }

    /// Parses the textual form: empty for the root, otherwise `/`-separated escaped tokens.
    public init(parsing text: String) throws(JSONPointerError) {
        if text.isEmpty {
            self.init(tokens: [])
            return
        }
        guard text.utf8.first == UInt8(ascii: "/") else {
            throw JSONPointerError("invalid JSON pointer \"\(text)\": it must be empty or start with '/'")
        }
        var tokens: [String] = []
        for escaped in text.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard escaped.contains(UInt8(ascii: "~")) else {
                tokens.append(String(decoding: escaped, as: UTF8.self))
                continue
            }
            var token: [UInt8] = []
            var iterator = escaped.makeIterator()
            while let byte = iterator.next() {
                guard byte == UInt8(ascii: "~") else {
                    token.append(byte)
                    continue
                }
                switch iterator.next() {
                case UInt8(ascii: "0"): token.append(UInt8(ascii: "~"))
                case UInt8(ascii: "1"): token.append(UInt8(ascii: "/"))
                default:
                    throw JSONPointerError("invalid JSON pointer \"\(text)\": '~' must be followed by '0' or '1'")
                }
            }
            tokens.append(String(decoding: token, as: UTF8.self))
        }
        self.init(tokens: tokens)
    }

    public var description: String {
        withText(room: 0, 0) { scratch, text in String(decoding: scratch[text], as: UTF8.self) }
    }

    /// Runs `body` on the UTF-8 of `description`, escaped on the stack at `text` in `scratch`,
    /// with `before` bytes of room ahead of it and `after` behind it, so that a writer can put
    /// its own text around it and take all of it in one piece: each append to an array costs
    /// about eighty instructions, which per token (or per byte) came to a thousand a pointer.
    func withText<Result>(room before: Int, _ after: Int,
                          _ body: (_ scratch: UnsafeMutableBufferPointer<UInt8>, _ text: Range<Int>) -> Result) -> Result {
        // Room for every byte escaped, and a separator before each token.
        var capacity = before + after
        for token in tokens { capacity += 1 + 2 * token.utf8.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(capacity, 1)) { scratch in
            // Through a pointer, unchecked: the room is counted above, and checked stores and
            // sums took a dozen instructions a byte.
            let out = scratch.baseAddress!
            var end = before
            for token in tokens {
                out[end] = UInt8(ascii: "/")
                end &+= 1
                // Over the contiguous bytes (on the stack for short strings), without copying
                // the string: walking `utf8` costs tens of instructions a byte.
                let target = out + end
                if let written = token.utf8.withContiguousStorageIfAvailable({ Self.escape($0, into: target) }) {
                    end &+= written
                } else {
                    var copy = token
                    end &+= copy.withUTF8 { Self.escape($0, into: target) }
                }
            }
            return body(scratch, before..<end)
        }
    }

    /// Writes `bytes` escaped at `out`, which has room for twice their count; returns the length.
    /// A function of its own, not a closure around the writer's position, which was then checked
    /// for exclusive access at every call.
    private static func escape(_ bytes: UnsafeBufferPointer<UInt8>, into out: UnsafeMutablePointer<UInt8>) -> Int {
        // Eight bytes at a time while they need no escape, as most tokens do not; the room is
        // twice what is left of the token, so a whole word fits.
        var read = 0, end = 0
        if let base = bytes.baseAddress {
            while bytes.count &- read >= 8 {
                let word = UnsafeRawPointer(base + read).loadUnaligned(as: UInt64.self)
                guard !hasTildeOrSlash(word) else { break }
                UnsafeMutableRawPointer(out + end).storeBytes(of: word, as: UInt64.self)
                read &+= 8
                end &+= 8
            }
        }
        for byte in UnsafeBufferPointer(rebasing: bytes[read...]) {
            if byte == UInt8(ascii: "~") || byte == UInt8(ascii: "/") {
                out[end] = UInt8(ascii: "~")
                out[end &+ 1] = byte == UInt8(ascii: "~") ? UInt8(ascii: "0") : UInt8(ascii: "1")
                end &+= 2
            } else {
                out[end] = byte
                end &+= 1
            }
        }
        return end
    }

    /// Whether any byte of `word` is `~` or `/`. (The borrow trick can only add false hits
    /// above a true one, so whether there is any is exact.)
    private static func hasTildeOrSlash(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        func hasZeroByte(_ value: UInt64) -> UInt64 { (value &- ones) & ~value & (ones &* 0x80) }
        return hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "~")))) | hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "/")))) != 0
    }

    public var isRoot: Bool { tokens.isEmpty }

    /// The pointer to the container of this value; the root's parent is the root.
    public var parent: JSONPointer { JSONPointer(tokens: Array(tokens.dropLast())) }

    public func appending(_ token: String) -> JSONPointer {
        JSONPointer(tokens: tokens + [token])
    }

    public func appending(index: Int) -> JSONPointer {
        appending(String(index))
    }

    /// Whether `other` lies strictly inside the value this pointer names.
    public func isProperPrefix(of other: JSONPointer) -> Bool {
        other.tokens.count > tokens.count && other.tokens.starts(with: tokens)
    }

    /// The array index a token names: decimal digits without leading zeros. `-` (past the end)
    /// is not an index; callers that accept it check for it first.
    /// Read over the contiguous bytes in one pass: `allSatisfy` over `utf8` and then `Int(token)`
    /// cost about two hundred and fifty instructions a token, once for every array on a patch's path.
    static func arrayIndex(_ token: String) -> Int? {
        if let parsed = token.utf8.withContiguousStorageIfAvailable(arrayIndex) { return parsed }
        var copy = token
        return copy.withUTF8(arrayIndex)
    }

    private static func arrayIndex(_ digits: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let first = digits.first, first != UInt8(ascii: "0") || digits.count == 1 else { return nil }
        return TextScan.decimalValue(digits, negative: false)
    }
}

/// Why a pointer could not be parsed or did not lead to a value.
public struct JSONPointerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension JSON {
    /// The value `pointer` names, or an error that says how far the path got.
    public func value(at pointer: JSONPointer) throws(JSONPointerError) -> JSON {
        var current = self
        for depth in pointer.tokens.indices {
            current = try current.child(pointer.tokens[depth], in: pointer, depth: depth)
        }
        return current
    }

    /// The member or element named by `pointer.tokens[depth]` of this value, which sits at the
    /// first `depth` tokens of `pointer`.
    func child(_ token: String, in pointer: JSONPointer, depth: Int) throws(JSONPointerError) -> JSON {
        switch self {
        case .object(let object):
            guard let value = object[token] else {
                throw JSONPointer.notFound(pointer, depth: depth, "no member \"\(token)\"")
            }
            return value
        case .array(let elements):
            let index = try JSONPointer.existingIndex(token, count: elements.count, in: pointer, depth: depth)
            return elements[index]
        default:
            throw JSONPointer.notFound(pointer, depth: depth, "\(typeName) has no members")
        }
    }
}

extension JSONPointer {
    /// "path /a/b/c not found: the object at /a/b has no member "c"" style errors, naming the
    /// deepest value that was reached.
    static func notFound(_ pointer: JSONPointer, depth: Int, _ reason: String) -> JSONPointerError {
        let reached = JSONPointer(tokens: Array(pointer.tokens[..<depth]))
        let place = reached.isRoot ? "the document root" : reached.description
        return JSONPointerError("path \(pointer) not found: \(reason) at \(place)")
    }

    /// The index of an existing element named by `token` in an array of `count` elements.
    static func existingIndex(_ token: String, count: Int, in pointer: JSONPointer, depth: Int) throws(JSONPointerError) -> Int {
        guard let index = arrayIndex(token) else {
            if token == "-" {
                throw notFound(pointer, depth: depth, "\"-\" names no existing element in the array")
            }
            throw notFound(pointer, depth: depth, "\"\(token)\" is not an array index")
        }
        guard index < count else {
            throw notFound(pointer, depth: depth, "index \(index) is out of range for the array of \(count) elements")
        }
        return index
    }
}
