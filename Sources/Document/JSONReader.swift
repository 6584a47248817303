import Glibc

/// A strict RFC 8259 JSON reader that builds the ordered `JSON` value without Foundation.
///
/// Strict, because a document that two readers could understand differently must be refused,
/// not guessed at: duplicate keys (which one wins?), lone surrogates and invalid UTF-8 (replaced
/// how?), leading zeros, trailing commas and trailing garbage are all errors with a byte offset,
/// a line and a column. The one exception is inside the members `parse(_:skipping:)` skips, where
/// a repeated key is not looked for (see there).
public enum JSONReader {
    /// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
    public static let defaultMaxDepth = 512

    /// Parses exactly one JSON value, with optional whitespace around it, from any bytes:
    /// `[UInt8]`, an `ArraySlice` of a request body, an `UnsafeRawBufferPointer`. Inlinable, as are
    /// the other entries, so that callers in other modules get them specialised for their bytes:
    /// otherwise each call looked up the types at run time, about 600 instructions.
    @inlinable
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        try withContiguousBytes(bytes) { parseOne($0, maxDepth: maxDepth, skipping: nil) }.get()
    }

    /// Parses like `parse`, but the object members at `skipping` (paths of keys from the root)
    /// are read as `null`: not built, and checked as strictly as the rest, with the same errors,
    /// but for one thing: inside a skipped member, a repeated key is not looked for. Strictness
    /// is there so that no two readers can understand a document differently; what is skipped is
    /// read by no one here, and a caller that writes the document back (the webhook's patch)
    /// leaves it as it was, so a repeat inside it cannot change what is decided or what another
    /// reader applies (Go's encoding/json, the apiserver's, takes repeats anywhere). Keeping every
    /// key to compare was most of the cost of skipping. A skipped member's own key is still
    /// compared with its siblings, as every key outside is.
    /// For callers that never look at a large part of a document (an AdmissionReview's
    /// `managedFields`), building it and freeing it again was most of the cost of reading.
    /// At most 64 paths.
    @inlinable
    public static func parse(_ bytes: some Collection<UInt8>, skipping: [[String]],
                             maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        precondition(skipping.count <= 64, "at most 64 paths to skip")
        return try withContiguousBytes(bytes) { parseOne($0, maxDepth: maxDepth, skipping: skipping) }.get()
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        try parse(text.utf8, maxDepth: maxDepth)
    }

    /// Parses a stream of JSON values that follow each other directly or separated by whitespace,
    /// as `kubectl apply -f` and watch responses deliver them. An empty stream has no values.
    @inlinable
    public static func parseStream(_ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> [JSONStreamValue] {
        try withContiguousBytes(bytes) { parseAll($0, maxDepth: maxDepth) }.get()
    }

    public static func parseStream(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> [JSONStreamValue] {
        try parseStream(text.utf8, maxDepth: maxDepth)
    }

    @inlinable
    static func withContiguousBytes<Result>(_ bytes: some Collection<UInt8>,
                                            _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = bytes.withContiguousStorageIfAvailable(body) { return result }
        return Array(bytes).withUnsafeBufferPointer(body)
    }

    @usableFromInline
    static func parseOne(_ buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int,
                         skipping: [[String]]?) -> Result<JSON, JSONParseError> {
        var parser = JSONParser(bytes: buffer, maxDepth: maxDepth)
        var start: JSONParser.SkippedPaths? = nil
        if let skipping {
            parser.skipPaths = skipping
            start = JSONParser.SkippedPaths(paths: 0, matched: 0)
            for (position, path) in skipping.enumerated() where !path.isEmpty { start!.paths |= 1 << position }
        }
        let result: Result<JSON, JSONParseError>
        do throws(JSONParser.Failure) {
            let value = try parser.parseValue(depth: 0, skipping: start?.paths == 0 ? nil : start)
            parser.skipWhitespace()
            if parser.index < buffer.count {
                throw parser.failure("unexpected \(describeByte(buffer[parser.index])) after the JSON value")
            }
            result = .success(value)
        } catch {
            result = .failure(JSONParseError(error, in: buffer))
        }
        parser.finish()
        return result
    }

    @usableFromInline
    static func parseAll(_ buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int) -> Result<[JSONStreamValue], JSONParseError> {
        var parser = JSONParser(bytes: buffer, maxDepth: maxDepth)
        var values: [JSONStreamValue] = []
        let result: Result<[JSONStreamValue], JSONParseError>
        do throws(JSONParser.Failure) {
            while true {
                parser.skipWhitespace()
                if parser.index == buffer.count { break }
                let start = parser.index
                let value = try parser.parseValue(depth: 0)
                values.append(JSONStreamValue(offset: start, endOffset: parser.index, value: value))
            }
            result = .success(values)
        } catch {
            result = .failure(JSONParseError(error, in: buffer))
        }
        parser.finish()
        return result
    }
}

/// One value of a JSON stream and the bytes it came from (`offset..<endOffset`).
public struct JSONStreamValue: Sendable, Equatable {
    public var offset: Int
    public var endOffset: Int
    public var value: JSON

    public init(offset: Int, endOffset: Int, value: JSON) {
        self.offset = offset
        self.endOffset = endOffset
        self.value = value
    }
}

/// Why a document is not JSON, and where: `offset` counts bytes from 0; `line` and `column` count
/// from 1, columns in Unicode scalars so they match what an editor shows.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var line: Int
    public var column: Int
    public var message: String

    public init(offset: Int, line: Int, column: Int, message: String) {
        self.offset = offset
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }

    fileprivate init(_ failure: JSONParser.Failure, in bytes: UnsafeBufferPointer<UInt8>) {
        var line = 1
        var column = 1
        for byte in bytes[..<min(failure.offset, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        self.init(offset: failure.offset, line: line, column: column, message: failure.message)
    }
}

/// `'x'` for printable ASCII, `byte 0xFF` otherwise; for "unexpected ..." messages.
private func describeByte(_ byte: UInt8) -> String {
    if byte >= 0x21 && byte < 0x7F { return "character '\(Character(Unicode.Scalar(byte)))'" }
    return "byte 0x\(hex2(byte))"
}

private func hex2(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
}

/// The recursive-descent parser over a byte buffer; `index` always points at the next unread byte.
private struct JSONParser: ~Copyable {
    struct Failure: Error {
        var offset: Int
        var message: String
    }

    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0
    /// Where a string with escapes is decoded, each in turn.
    var scratch: Stack<UInt8>
    /// The members of the objects being read and the elements of the arrays, innermost last.
    var members: Stack<JSONObject.Member>
    var elements: Stack<JSON>
    /// The paths of keys from the root whose members are skipped (see `JSONReader.parse(_:skipping:)`).
    var skipPaths: [[String]] = []
    /// Kept, not looked up as `KnownStrings.table` for each string (see there).
    let knownStrings = KnownStrings.table

    /// Which `skipPaths` lead through a value: those whose first `matched` keys are the keys
    /// from the root to it and that go on below it, one bit each, so that following them
    /// allocates nothing.
    struct SkippedPaths {
        var paths: UInt64
        var matched: Int
    }

    /// With the stacks the thread kept from its last read (see `ParserStacks`).
    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        let stacks = bytes.count <= ParserStacks.keptReadSize ? ParserStacks.taken() : ParserStacks()
        scratch = stacks.scratch
        members = stacks.members
        elements = stacks.elements
    }

    /// Ends the read, leaving the stacks, emptied, to the thread's next one.
    consuming func finish() {
        guard bytes.count <= ParserStacks.keptReadSize else { return }
        scratch.removeAll(from: 0)
        members.removeAll(from: 0)
        elements.removeAll(from: 0)
        ParserStacks.keep(ParserStacks(scratch: scratch, members: members, elements: elements))
    }

    func failure(_ message: String, at offset: Int? = nil) -> Failure {
        Failure(offset: offset ?? index, message: message)
    }

    /// "expected X", naming the end of input when that is what was found instead.
    func expected(_ what: String) -> Failure {
        if index >= bytes.count { return failure("unexpected end of input, expected \(what)") }
        return failure("expected \(what)")
    }

    /// The address of the input's first byte, for reads known to lie within it: a buffer with a
    /// byte has one, so unwrapped unchecked (`if let` tested it at each string read).
    @inline(__always)
    var inputBase: UnsafePointer<UInt8> { bytes.baseAddress.unsafelyUnwrapped }

    /// Written out, not as `index = whitespaceEnd(from: index)`: so written, Swift 6.3.1's -O
    /// build with AddressSanitizer (the fuzz targets') refused every number.
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// The first position from `start` that is not whitespace, for the skipper, which keeps its
    /// position in a local (see `skipObject`).
    @inline(__always)
    func whitespaceEnd(from start: Int) -> Int {
        var position = start
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position &+= 1
            default: return position
            }
        }
        return position
    }

    /// `skipping` tells the paths of members to skip that lead through this value (nil for none).
    mutating func parseValue(depth: Int, skipping: SkippedPaths? = nil) throws(Failure) -> JSON {
        skipWhitespace()
        guard index < bytes.count else { throw expected("a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            if let skipping { return try parseObject(depth: depth + 1, skipping: skipping) }
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return try parseStringValue()
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case let byte:
            let words: [StaticString] = ["NaN", "Infinity"]
            for word in words where hasPrefix(word) {
                throw failure("\(word) is not a JSON value")
            }
            throw failure("unexpected \(describeByte(byte)), expected a value")
        }
    }

    /// `parseValue` for a member's value or an array's element: strings, objects, arrays and
    /// numbers, most of them, read without the call of `parseValue` and its looking at the first
    /// byte again.
    @inline(__always)
    mutating func parseInnerValue(depth: Int) throws(Failure) -> JSON {
        guard index < bytes.count else { return try parseValue(depth: depth) }
        switch bytes[index] {
        case UInt8(ascii: "\""): return try parseStringValue()
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: return try parseValue(depth: depth)
        }
    }

    /// Reads the string value at `index` (its opening quote).
    @inline(__always)
    mutating func parseStringValue() throws(Failure) -> JSON {
        var plainEnd = index &+ 1
        if let bits = parseShortString(plainEnd: &plainEnd) { return .string(TextScan.string(bits: bits)) }
        return try parseLongStringValue(plainEnd: plainEnd)
    }

    /// A string value that `parseShortString` left, from `plainEnd`. Apart, so that the readers
    /// of members and elements carry the short strings' path without this one's registers.
    @inline(never)
    mutating func parseLongStringValue(plainEnd: Int) throws(Failure) -> JSON {
        .string(try parseString(plainEnd: plainEnd))
    }

    func hasPrefix(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        return true
    }

    mutating func expectLiteral(_ word: StaticString) throws(Failure) {
        guard hasPrefix(word) else { throw failure("invalid literal, expected '\(word)'") }
        index += word.utf8CodeUnitCount
    }

    /// Steps over the `{` or `[` that opens a container at `depth`, unless that is too deep.
    @inline(__always)
    mutating func enter(_ depth: Int) throws(Failure) {
        if depth > maxDepth { throw failure("nesting is deeper than \(maxDepth) levels") }
        index += 1
        skipWhitespace()
    }

    /// An object on none of the paths to skip, most of them. Apart from the objects on a path,
    /// so that its copy of `parseMembers`, without the code that follows the paths, keeps more
    /// of its state in registers. Never inlined, as that left a copy with the paths in its
    /// callers.
    @inline(never)
    mutating func parseObject(depth: Int) throws(Failure) -> JSON {
        try parseMembers(depth: depth, skipping: nil)
    }

    /// An object that paths to skip lead through (the few from the root to what is skipped).
    mutating func parseObject(depth: Int, skipping: SkippedPaths) throws(Failure) -> JSON {
        try parseMembers(depth: depth, skipping: skipping)
    }

    /// Reads the object at `index` (its `{`); `skipping` as for `parseValue`.
    @inline(__always)
    mutating func parseMembers(depth: Int, skipping: SkippedPaths?) throws(Failure) -> JSON {
        try enter(depth)
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject())
        }
        // The members wait on `members`, moved from there into storage of their exact number
        // when the object ends (see `Stack.popAll`): growing an array as they come, from room
        // for four, cost more than twice as much. (Tried before with a dearer `popAll`, when
        // managedFields was built too, and dropped as no cheaper.)
        let first = members.count
        var keyLengths: UInt64 = 0
        var largeKeys: KeyIndex? = nil
        while true {
            guard index < bytes.count && bytes[index] == UInt8(ascii: "\"") else {
                if members.count > first && index < bytes.count && bytes[index] == UInt8(ascii: "}") {
                    throw failure("trailing comma before '}'")
                }
                throw expected("a string as object key")
            }
            let keyOffset = index
            var plainEnd = index &+ 1
            let keyWords = parseShortString(plainEnd: &plainEnd)
            let key = if let keyWords { TextScan.string(bits: keyWords) } else { try parseString(plainEnd: plainEnd) }
            let length = if let keyWords { TextScan.smallCount(bits: keyWords) } else { key.utf8.count }
            // A key of a length not seen before in a small object is new without looking further,
            // the usual case. The index of a large one is made when it is first needed, from
            // all the keys read by then, and from then on holds each key: all lengths then count
            // as seen, so that the test of one bit sends each key to it.
            let lengthBit: UInt64 = 1 &<< UInt64(length & 63)
            if keyLengths & lengthBit != 0 {
                let read = members.values(from: first)
                if largeKeys == nil && read.count >= 16 {
                    largeKeys = KeyIndex()
                    for member in read { _ = largeKeys!.add(member.key) { _ in false } }
                    keyLengths = ~0
                }
                let duplicate = if largeKeys != nil {
                    !largeKeys!.add(key) { isKey(key, length: length, words: keyWords, at: keyAddress($0, in: read)) }
                } else {
                    read.indices.contains { isKey(key, length: length, words: keyWords, at: keyAddress($0, in: read)) }
                }
                if duplicate { throw failure("duplicate key \"\(key)\" in object", at: keyOffset) }
            }
            keyLengths |= lengthBit
            guard passWhitespace(before: UInt8(ascii: ":")) else { throw expected("':' after object key") }
            index += 1
            let value: JSON
            if let skipping {
                var below = SkippedPaths(paths: 0, matched: skipping.matched + 1)
                var skipsMember = false
                // Each path that leads through this object, by its bit.
                var paths = skipping.paths
                while paths != 0 {
                    let position = paths.trailingZeroBitCount
                    paths &= paths &- 1
                    let isName = withUnsafePointer(to: skipPaths[position][skipping.matched]) {
                        isKey(key, length: length, words: keyWords, at: $0)
                    }
                    guard isName else { continue }
                    if skipPaths[position].count == below.matched {
                        skipsMember = true
                    } else {
                        below.paths |= 1 << position
                    }
                }
                if skipsMember {
                    try skipValue(depth: depth)
                    value = .null
                } else {
                    value = try parseValue(depth: depth, skipping: below.paths == 0 ? nil : below)
                }
            } else {
                value = try parseInnerValue(depth: depth)
            }
            members.push(JSONObject.Member(key: key, value: consume value))
            if try passSeparator(closer: UInt8(ascii: "}"), orFail: "',' or '}' after object member") {
                return .object(JSONObject(uniqueMembersFrom: &members, from: first))
            }
        }
    }

    /// After an object's member or an array's element: past a ',' and the space after it (false),
    /// or past `closer`, the end of the container (true); anything else is `expected(message)`.
    @inline(__always)
    mutating func passSeparator(closer: UInt8, orFail message: String) throws(Failure) -> Bool {
        if passWhitespace(before: UInt8(ascii: ",")) {
            index += 1
            skipWhitespace()
            return false
        }
        guard index < bytes.count && bytes[index] == closer else { throw expected(message) }
        index += 1
        return true
    }

    /// Whether `byte` comes next, after any whitespace, which is passed: `isNext` for `index`.
    /// The byte is looked at first, as compact JSON has no whitespace to look for.
    @inline(__always)
    mutating func passWhitespace(before byte: UInt8) -> Bool {
        if index < bytes.count && bytes[index] == byte { return true }
        skipWhitespace()
        return index < bytes.count && bytes[index] == byte
    }

    // MARK: Skipping

    /// Reads a value as `parseValue` does, with the same errors (but see `skipObject`), keeping
    /// nothing: strings and numbers are checked where they lie, objects and arrays walked without
    /// being built. Inlined into `skipObject` and `skipArray`, which then call each other directly.
    @inline(__always)
    mutating func skipValue(depth: Int) throws(Failure) {
        skipWhitespace()
        guard index < bytes.count else { throw expected("a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            if isEmptyObject(at: index, depth: depth) {
                index += 2
            } else {
                try skipObject(depth: depth + 1)
            }
        case UInt8(ascii: "["): try skipArray(depth: depth + 1)
        case UInt8(ascii: "\""): index = try skipString(from: index)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: _ = try parseValue(depth: depth)
        }
    }

    /// Whether a `{}` is at `position`, as a value at `depth`: the value of most members of
    /// managedFields, passed without a call.
    @inline(__always)
    func isEmptyObject(at position: Int, depth: Int) -> Bool {
        depth < maxDepth && bytes.count &- position >= 2 && bytes[position] == UInt8(ascii: "{")
            && bytes[position &+ 1] == UInt8(ascii: "}")
    }

    /// `parseObject` without the object, and without looking for repeated keys (see
    /// `JSONReader.parse(_:skipping:)`). An object inside is entered in the same loop, not by a
    /// call, as `depth` counts (managedFields is objects in objects, most of them small): the
    /// position is kept in a local, and `index` set only for a call or an error, as the
    /// compiler stored and loaded `index` at every step.
    mutating func skipObject(depth outerDepth: Int) throws(Failure) {
        try enter(outerDepth)
        var position = index
        if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
            index = position &+ 1
            return
        }
        try expectKey(at: position, afterComma: false)
        // The depth of the innermost object open.
        var depth = outerDepth
        members: while true {
            // At a key's opening quote.
            position = try skipString(from: position)
            guard isNext(UInt8(ascii: ":"), at: &position) else {
                index = position
                throw expected("':' after object key")
            }
            position &+= 1
            if isEmptyObject(at: position, depth: depth) {
                position &+= 2
            } else if position < bytes.count && bytes[position] == UInt8(ascii: "{") {
                index = position
                try enter(depth &+ 1)
                position = index
                if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
                    position &+= 1
                } else {
                    try expectKey(at: position, afterComma: false)
                    depth &+= 1
                    continue members
                }
            } else {
                index = position
                try skipValue(depth: depth)
                position = index
            }
            // After a member's value: past the `}` of each object that ends here.
            while true {
                if isNext(UInt8(ascii: ","), at: &position) {
                    position &+= 1
                    if position < bytes.count && bytes[position] == UInt8(ascii: "\"") { continue members }
                    position = whitespaceEnd(from: position)
                    try expectKey(at: position, afterComma: true)
                    continue members
                }
                guard position < bytes.count && bytes[position] == UInt8(ascii: "}") else {
                    index = position
                    throw expected("',' or '}' after object member")
                }
                position &+= 1
                if depth == outerDepth {
                    index = position
                    return
                }
                depth &-= 1
            }
        }
    }

    /// Fails unless a key's opening quote is at `position`, where the skipper looks for a key.
    @inline(__always)
    mutating func expectKey(at position: Int, afterComma: Bool) throws(Failure) {
        guard position >= bytes.count || bytes[position] != UInt8(ascii: "\"") else { return }
        index = position
        if afterComma && position < bytes.count && bytes[position] == UInt8(ascii: "}") {
            throw failure("trailing comma before '}'")
        }
        throw expected("a string as object key")
    }

    /// Whether `byte` comes next at `position`, after any whitespace, which `position` is moved
    /// past. The byte is looked at first, as compact JSON has no whitespace to look for.
    @inline(__always)
    func isNext(_ byte: UInt8, at position: inout Int) -> Bool {
        if position < bytes.count && bytes[position] == byte { return true }
        position = whitespaceEnd(from: position)
        return position < bytes.count && bytes[position] == byte
    }

    /// Where the string at `quote` ends, past its closing quote, checked as `scanString` checks
    /// it: eight bytes at a time, ASCII text and the escapes of one letter (managedFields' `\"`)
    /// alike, without leaving the loop. Anything else (text beyond ASCII, a `\u` escape, the
    /// last few bytes of the input, an error) is left to `rereadString`.
    @inline(__always)
    mutating func skipString(from quote: Int) throws(Failure) -> Int {
        var position = quote &+ 1
        while bytes.count &- position >= 8 {
            let base = inputBase
            let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
            let stops = TextScan.asciiStopMask(word)
            if stops == 0 {
                position &+= 8
                continue
            }
            position &+= stops.trailingZeroBitCount &>> 3
            if base[position] == UInt8(ascii: "\"") { return position &+ 1 }
            guard base[position] == UInt8(ascii: "\\") && position &+ 1 < bytes.count
                    && isOneLetterEscape(base[position &+ 1]) else { break }
            position &+= 2
        }
        return try rereadString(from: quote)
    }

    /// `skipString` for what it leaves: the string read again from its quote by `scanString`,
    /// so that the checks and their errors are its own. Not inlined, to keep `skipString` small
    /// enough to be.
    @inline(never)
    mutating func rereadString(from quote: Int) throws(Failure) -> Int {
        index = quote
        _ = try scanString(decoding: false)
        return index
    }

    /// Whether `\` and `letter` are a whole escape (all but `\u`).
    func isOneLetterEscape(_ letter: UInt8) -> Bool {
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): true
        default: false
        }
    }

    /// `parseArray` without the array.
    mutating func skipArray(depth: Int) throws(Failure) {
        try enter(depth)
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        var isFirst = true
        while true {
            if !isFirst && index < bytes.count && bytes[index] == UInt8(ascii: "]") {
                throw failure("trailing comma before ']'")
            }
            isFirst = false
            try skipValue(depth: depth)
            if try passSeparator(closer: UInt8(ascii: "]"), orFail: "',' or ']' after array element") {
                return
            }
        }
    }

    // MARK: Arrays, numbers, strings

    mutating func parseArray(depth: Int) throws(Failure) -> JSON {
        try enter(depth)
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array([])
        }
        // Like an object's members, elements wait on a stack of the parser's.
        let first = elements.count
        while true {
            if elements.count > first && index < bytes.count && bytes[index] == UInt8(ascii: "]") {
                throw failure("trailing comma before ']'")
            }
            let element = try parseInnerValue(depth: depth)
            elements.push(element)
            if try passSeparator(closer: UInt8(ascii: "]"), orFail: "',' or ']' after array element") {
                return .array(elements.popAll(from: first))
            }
        }
    }

    mutating func parseNumber() throws(Failure) -> JSON {
        .number(TextScan.string(try scanNumber(), in: bytes, ascii: true))
    }

    /// Reads a number and checks it, without making a `String`: where its text is. A number of
    /// digits alone, most of a pod's, is read with its position in a local (the compiler stored
    /// `index` at each digit); any other, or a bad one, is read again from its start below.
    mutating func scanNumber() throws(Failure) -> Range<Int> {
        let start = index
        if isDigit(bytes[start]) {
            var position = start &+ 1
            while position < bytes.count && isDigit(bytes[position]) { position &+= 1 }
            let hasLeadingZero = bytes[start] == UInt8(ascii: "0") && position &- start > 1
            if !hasLeadingZero && (position == bytes.count || !isFractionOrExponent(bytes[position])) {
                index = position
                return start..<position
            }
        }
        if bytes[index] == UInt8(ascii: "-") {
            index += 1
            if hasPrefix("Infinity") { throw failure("-Infinity is not a JSON value", at: start) }
        }
        guard index < bytes.count, isDigit(bytes[index]) else { throw expected("a digit after '-'") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) {
                throw failure("leading zeros are not allowed in numbers", at: start)
            }
        } else {
            skipDigits()
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw expected("a digit after the decimal point") }
            skipDigits()
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw expected("a digit in the exponent") }
            skipDigits()
        }
        return start..<index
    }

    func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    /// Whether `byte`, after a number's integer part, begins a fraction or an exponent.
    func isFractionOrExponent(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ".") || byte | 0x20 == UInt8(ascii: "e")
    }

    mutating func skipDigits() {
        while index < bytes.count && isDigit(bytes[index]) { index += 1 }
    }

    /// Where the text of a string just read is: in place in the input (no escapes, the usual
    /// case), or, for a string with escapes, decoded into `scratch` (when it was read with
    /// `decoding`; a skipped string is decoded nowhere). Either way it is valid UTF-8.
    enum StringText {
        case input(Range<Int>, ascii: Bool)
        case escaped(ascii: Bool)
    }

    /// Reads the string at `index` (its opening quote) when it is the usual kind of key or short
    /// value: at most 15 ASCII bytes without escapes, followed by at least 16 more bytes of
    /// input. Its two words are loaded once, to find its end and to be the small string: its
    /// bits, or nil, reading nothing, for any other string, which `parseString` reads from
    /// `plainEnd`, moved past the 16 bytes found plain ASCII text when the string is longer (not
    /// to read them twice: the 52-byte values of the 1,500-env pod). Keys were a fifth of reading
    /// an AdmissionReview, each through the general path.
    @inline(__always)
    mutating func parseShortString(plainEnd: inout Int) -> (UInt64, UInt64)? {
        let start = index &+ 1
        guard bytes.count &- start >= 16 else { return nil }
        let base = inputBase
        let text = UnsafeRawPointer(base + start)
        var low = UInt64(littleEndian: text.loadUnaligned(as: UInt64.self))
        var high = UInt64(littleEndian: text.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let length: Int
        let lowStops = TextScan.asciiStopMask(low)
        if lowStops != 0 {
            length = lowStops.trailingZeroBitCount &>> 3
            low &= (1 &<< UInt64(length &* 8)) &- 1
            high = 0
        } else {
            let highStops = TextScan.asciiStopMask(high)
            guard highStops != 0 else {
                plainEnd = start &+ 16
                return nil
            }
            let highLength = highStops.trailingZeroBitCount &>> 3
            high &= (1 &<< UInt64(highLength &* 8)) &- 1
            length = 8 &+ highLength
        }
        guard base[start &+ length] == UInt8(ascii: "\"") else { return nil }
        index = start &+ length &+ 1
        return TextScan.smallASCII(low: low, high: high, count: length)
    }

    /// Whether the string at `stored` is the key just read: `key`, of UTF-8 `length`, and when
    /// it is short, `words`, its bits. A short key and a stored string that is small too are
    /// the same exactly when their bits are (see `TextScan.isSmall`): compared so, from memory,
    /// without the retains and the call of `==`. Any other pair by length first, as `==` is
    /// costly when it fails, then by `==`.
    @inline(__always)
    func isKey(_ key: String, length: Int, words: (UInt64, UInt64)?, at stored: UnsafePointer<String>) -> Bool {
        if let words {
            let bits = TextScan.bits(at: stored)
            if TextScan.isSmall(bits: bits) { return bits == words }
        }
        return stored.pointee.utf8.count == length && stored.pointee == key
    }

    /// Where the key of `members[position]` is, for `isKey`.
    @inline(__always)
    func keyAddress(_ position: Int, in members: UnsafeBufferPointer<JSONObject.Member>) -> UnsafePointer<String> {
        let member = UnsafeRawPointer(members.baseAddress! + position)
        return (member + MemoryLayout<JSONObject.Member>.offset(of: \.key)!).assumingMemoryBound(to: String.self)
    }

    /// Reads a string starting at its opening quote, one that `parseShortString` left, from
    /// `plainEnd` (see there). Strings without escapes, the usual case, are copied straight from
    /// the input, unless they are one of the `KnownStrings`. Inlined where the compiler takes it
    /// (string values in `parseLongStringValue`; `parseObject`, already large, still calls it for keys):
    /// the call was about a quarter of reading a short string.
    @inline(__always)
    mutating func parseString(plainEnd: Int) throws(Failure) -> String {
        switch try scanString(plainEnd: plainEnd) {
        case .input(let range, ascii: true):
            knownStrings.string(utf8: UnsafeBufferPointer(rebasing: bytes[range]))
                ?? TextScan.string(range, in: bytes, ascii: true)
        case .input(let range, ascii: false): TextScan.string(range, in: bytes, ascii: false)
        case .escaped(let ascii):
            TextScan.string(0..<scratch.count, in: scratch.values(from: 0), ascii: ascii)
        }
    }

    /// Reads a string starting at its opening quote and checks it, without making a `String`;
    /// escapes are decoded into `scratch` unless `decoding` is false (a string skipped). Its text
    /// up to `plainEnd`, when given, is already known to be plain ASCII.
    @inline(__always)
    mutating func scanString(decoding: Bool = true, plainEnd: Int? = nil) throws(Failure) -> StringText {
        let quote = index
        let start = index + 1
        var position = TextScan.asciiRun(in: bytes, from: plainEnd ?? start)
        var ascii = true
        if position < bytes.count && bytes[position] >= 0x80 {
            (position, ascii) = (TextScan.plainRun(in: bytes, from: position).end, false)
        }
        index = position
        guard position < bytes.count else { throw failure("unterminated string", at: quote) }
        switch bytes[position] {
        case UInt8(ascii: "\""):
            let range = start..<position
            index += 1
            if !ascii { try validateUTF8(range) }
            return .input(range, ascii: ascii)
        case UInt8(ascii: "\\"):
            return .escaped(ascii: try scanEscapedString(quote: quote, start: start, ascii: ascii, decoding: decoding))
        case let byte:
            throw controlCharacter(byte)
        }
    }

    func controlCharacter(_ byte: UInt8) -> Failure {
        failure("unescaped control character U+00\(hex2(byte)) in string")
    }

    /// The slow path, from the first backslash at `index`: checks each escape and the runs
    /// between them, and when `decoding`, writes the text into `scratch`. Whether the text is
    /// ASCII, which `ascii` says of the run before the backslash.
    mutating func scanEscapedString(quote: Int, start: Int, ascii: Bool, decoding: Bool) throws(Failure) -> Bool {
        if !ascii { try validateUTF8(start..<index) }
        if decoding {
            scratch.removeAll(from: 0)
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        }
        var textIsASCII = ascii
        while true {
            let escapeIsASCII = try parseEscape(quote: quote, decoding: decoding)
            let runStart = index
            let (position, runIsASCII) = TextScan.plainRun(in: bytes, from: runStart)
            index = position
            guard position < bytes.count else { throw failure("unterminated string", at: quote) }
            let byte = bytes[position]
            guard byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { throw controlCharacter(byte) }
            if !runIsASCII { try validateUTF8(runStart..<position) }
            if decoding { scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position])) }
            textIsASCII = textIsASCII && escapeIsASCII && runIsASCII
            if byte == UInt8(ascii: "\"") {
                index += 1
                return textIsASCII
            }
        }
    }

    /// Checks one escape sequence at `index` (the backslash), and decodes it into `scratch`
    /// when `decoding`. Whether it stands for an ASCII character. Inlined into the loop over a
    /// string's escapes, as the `\"` of managedFields' keys are many; a `\u` is read apart.
    @inline(__always)
    mutating func parseEscape(quote: Int, decoding: Bool) throws(Failure) -> Bool {
        let escapeStart = index
        index += 1
        guard index < bytes.count else { throw failure("unterminated string", at: quote) }
        let letter = bytes[index]
        index += 1
        let simple: UInt8? = switch letter {
        case UInt8(ascii: "\""): UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): UInt8(ascii: "\\")
        case UInt8(ascii: "/"): UInt8(ascii: "/")
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
        if let simple {
            if decoding { scratch.push(simple) }
            return true
        }
        return try parseUnicodeEscape(letter: letter, escapeStart: escapeStart, decoding: decoding)
    }

    /// The rest of `parseEscape` after `letter`, which is not a simple escape: a `\u` escape
    /// (two for a surrogate pair), or an error.
    mutating func parseUnicodeEscape(letter: UInt8, escapeStart: Int, decoding: Bool) throws(Failure) -> Bool {
        guard letter == UInt8(ascii: "u") else {
            let shown = letter >= 0x21 && letter < 0x7F ? "'\\\(Character(Unicode.Scalar(letter)))'" : "'\\' followed by \(describeByte(letter))"
            throw failure("invalid escape \(shown) in string", at: escapeStart)
        }
        let unit = try parseHex4(escapeStart: escapeStart)
        var scalarValue = UInt32(unit)
        if 0xD800...0xDBFF ~= unit {
            // A high surrogate must be followed by an escaped low surrogate.
            guard hasPrefix("\\u") else { throw unpairedSurrogate(unit, at: escapeStart) }
            let lowStart = index
            index += 2
            let low = try parseHex4(escapeStart: lowStart)
            guard 0xDC00...0xDFFF ~= low else { throw unpairedSurrogate(unit, at: escapeStart) }
            scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
        } else if 0xDC00...0xDFFF ~= unit {
            throw unpairedSurrogate(unit, at: escapeStart)
        }
        if decoding {
            for byte in UTF8.encode(Unicode.Scalar(scalarValue)!)! { scratch.push(byte) }
        }
        return scalarValue < 0x80
    }

    func unpairedSurrogate(_ unit: UInt16, at offset: Int) -> Failure {
        let text = String(unit, radix: 16, uppercase: true)
        return failure("unpaired surrogate \\u\(text) in string", at: offset)
    }

    mutating func parseHex4(escapeStart: Int) throws(Failure) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard index < bytes.count, let digit = hexValue(bytes[index]) else {
                throw failure("invalid \\u escape in string, expected 4 hex digits", at: escapeStart)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Checks well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF) and names
    /// the first bad byte.
    func validateUTF8(_ range: Range<Int>) throws(Failure) {
        var i = range.lowerBound
        while i < range.upperBound {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            default: throw failure("invalid UTF-8 byte 0x\(hex2(lead)) in string", at: i)
            }
            for k in 1..<length {
                let position = i + k
                let allowed = k == 1 ? secondRange : 0x80...0xBF
                guard position < range.upperBound, allowed ~= bytes[position] else {
                    throw failure("invalid UTF-8 sequence starting with byte 0x\(hex2(lead)) in string", at: i)
                }
            }
            i += length
        }
    }
}

/// The stacks a `JSONParser` reads with, which each thread keeps from one read to the next.
/// Made anew for each read, they cost three allocations, and the first of them, over 1 KB, had
/// glibc's malloc merge its lists of freed chunks in the middle of the read: 370k of the
/// 1,500-env review's 3.9M instructions of reading (45k of the whole review, as the merge now
/// falls in freeing), 840 of the sample review's 85k.
/// Per thread (through a pthread key, the only state shared being the key, made once), so
/// that taking them needs no lock. A thread keeps only the stacks of documents up to
/// `keptReadSize` (the 1,500-env review is 250 KB): stacks grow to at most about 16 bytes for
/// each byte read (an array of one-digit numbers), so a thread keeps at most 4 MiB, and for
/// an AdmissionReview a few KB. Larger documents are read with stacks of their own, freed after.
private struct ParserStacks: ~Copyable {
    var scratch = Stack<UInt8>(capacity: 256)
    var members = Stack<JSONObject.Member>(capacity: 64)
    var elements = Stack<JSON>(capacity: 64)

    static let keptReadSize = 256 * 1024

    /// Each thread's slot: a `ParserStacks?`, allocated on its first read and freed with it.
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { slot in
            guard let slot = slot?.assumingMemoryBound(to: ParserStacks?.self) else { return }
            slot.deinitialize(count: 1)
            slot.deallocate()
        }
        precondition(status == 0, "pthread_key_create failed: \(status)")
        return key
    }()

    /// The thread's kept stacks, which are its no more until `keep` (a read within a read, there
    /// is none, would make its own), or new ones.
    static func taken() -> ParserStacks {
        slot().pointee.take() ?? ParserStacks()
    }

    static func keep(_ stacks: consuming ParserStacks) {
        slot().pointee = .some(stacks)
    }

    private static func slot() -> UnsafeMutablePointer<ParserStacks?> {
        let key = key
        if let slot = pthread_getspecific(key) { return slot.assumingMemoryBound(to: ParserStacks?.self) }
        let slot = UnsafeMutablePointer<ParserStacks?>.allocate(capacity: 1)
        slot.initialize(to: nil)
        precondition(pthread_setspecific(key, slot) == 0, "pthread_setspecific failed")
        return slot
    }
}

/// The keys of an object too large to search by scanning (managedFields), for finding a repeated
/// one: open addressing over the members' positions by each key's `hashValue`. The hashes are
/// kept, so growing the table never hashes a key again, as a `Set` does each time it doubles;
/// Swift's seeded hash still keeps crafted keys from piling up in one chain.
private struct KeyIndex {
    /// Positions of the keys added, by slot; -1 for an empty slot.
    private var slots = [Int32](repeating: -1, count: 64)
    /// The hash of each key added, by position.
    private var hashes: [Int] = []

    /// Adds the key at the next position, unless `sameKey` says the key at an earlier position
    /// (one with the same hash) is the same; then returns false.
    mutating func add(_ key: String, sameKey: (Int) -> Bool) -> Bool {
        let hash = key.hashValue
        if (hashes.count + 1) * 2 > slots.count { grow() }
        let mask = slots.count - 1
        var slot = hash & mask
        while slots[slot] >= 0 {
            let position = Int(slots[slot])
            if hashes[position] == hash && sameKey(position) { return false }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(hashes.count)
        hashes.append(hash)
        return true
    }

    private mutating func grow() {
        var grown = [Int32](repeating: -1, count: slots.count * 2)
        let mask = grown.count - 1
        for (position, hash) in hashes.enumerated() {
            var slot = hash & mask
            while grown[slot] >= 0 { slot = (slot + 1) & mask }
            grown[slot] = Int32(position)
        }
        slots = grown
    }
}
