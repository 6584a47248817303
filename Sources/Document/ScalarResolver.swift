/// Types YAML scalars the way Kubernetes tooling (sigs.k8s.io/yaml over go-yaml v2, YAML 1.1
/// rules) does, and tells the writer which strings must be quoted to read back as strings.
public enum ScalarResolver {
    private static let tagPrefix = "tag:yaml.org,2002:"

    /// The JSON value of one scalar, from its UTF-8 bytes. Quoted and block scalars are strings;
    /// plain ones are typed unless a tag says otherwise. Works on bytes so that the common plain
    /// scalar, a name or a path, becomes one String and nothing else.
    static func resolve(_ bytes: UnsafeBufferPointer<UInt8>, style: YAMLNode.ScalarStyle, tag: String?,
                        at mark: SourceMark) throws(YAMLError) -> JSON {
        if let tag, tag.hasPrefix(tagPrefix) {
            let name = tag.dropFirst(tagPrefix.count)
            let text = String(decoding: bytes, as: UTF8.self)
            switch name {
            case "str", "binary", "timestamp":
                return .string(text)
            case "null":
                return .null
            case "bool":
                if let value = boolean(bytes) { return .bool(value) }
                throw YAMLError(mark: mark, message: "\"\(text)\" is not a boolean (!!bool)")
            case "int", "float":
                switch number(bytes) {
                case .asWritten?: return .number(text)
                case .canonical(let number)?: return .number(number)
                case nil: throw YAMLError(mark: mark, message: "\"\(text)\" is not a number (!!\(name))")
                }
            default:
                break
            }
        }
        guard tag != "!" else { return .string(String(decoding: bytes, as: UTF8.self)) }
        return untagged(bytes, isPlain: style == .plain)
    }

    /// The value of a scalar without a core tag: a string, unless it is plain and reads as
    /// something else. It depends on the bytes and on plainness alone, so it can be remembered.
    static func untagged(_ bytes: UnsafeBufferPointer<UInt8>, isPlain: Bool) -> JSON {
        guard isPlain else { return .string(String(decoding: bytes, as: UTF8.self)) }
        switch classify(bytes) {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .number(.asWritten): return .number(String(decoding: bytes, as: UTF8.self))
        case .number(.canonical(let number)): return .number(number)
        case .string: return .string(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// The value of a plain scalar.
    public static func plain(_ text: String) -> JSON {
        var text = text
        switch text.withUTF8(classify) {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .number(.asWritten): return .number(text)
        case .number(.canonical(let number)): return .number(number)
        case .string: return .string(text)
        }
    }

    /// Whether a string written plain would read back as something else (a number, a boolean,
    /// null, a date, a merge key), so the writer must quote it.
    public static func mustQuote(_ text: String) -> Bool {
        var text = text
        if case .string = text.withUTF8(classify) {} else { return true }
        if text == "<<" || text == "=" { return true }
        return looksLikeTimestamp(text)
    }

    /// A plain scalar's type, read from its bytes.
    private enum PlainValue {
        case null, bool(Bool), number(NumberText), string
    }

    /// A number's JSON text: the scalar as written when that is valid JSON already, or else the
    /// decimal form worked out from it.
    enum NumberText: Equatable {
        case asWritten
        case canonical(String)
    }

    private static func classify(_ bytes: UnsafeBufferPointer<UInt8>) -> PlainValue {
        // Most scalars are names, images and paths: a first byte that starts no null, boolean or
        // number settles it at once.
        guard let first = bytes.first else { return .null }
        if !mayBeTyped(first) { return .string }
        if startsNumber(first) {
            return number(bytes).map(PlainValue.number) ?? .string
        }
        if isNull(bytes) { return .null }
        if let value = boolean(bytes) { return .bool(value) }
        return .string
    }

    private static func mayBeTyped(_ first: UInt8) -> Bool {
        switch first {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
             UInt8(ascii: "~"), UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "y"), UInt8(ascii: "Y"),
             UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "o"),
             UInt8(ascii: "O"):
            return true
        default:
            return false
        }
    }

    private static func startsNumber(_ first: UInt8) -> Bool {
        first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".")
            || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9"))
    }

    /// Digits (hexadecimal too), signs, `.`, `_`, exponents and the `0x`/`0o`/`0b` prefixes.
    private static func mayBeInNumber(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"),
             UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "o"), UInt8(ascii: "O"),
             UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// The words YAML 1.1 reads as null and booleans, each packed into an integer (see `packed`),
    /// so that telling a short scalar from them is a few integer compares.
    private static let nulls = packedWords(["~", "null", "Null", "NULL"])
    private static let trues = packedWords(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"])
    private static let falses = packedWords(["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"])

    private static func packedWords(_ list: [String]) -> [UInt64] {
        list.map { word in Array(word.utf8).withUnsafeBufferPointer { packed($0)! } }
    }

    /// Up to five bytes, the longest of those words, in one integer: the length in the top byte,
    /// the bytes below it; nil for longer scalars, which are none of them.
    private static func packed(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard bytes.count <= 5 else { return nil }
        var value = UInt64(bytes.count) << 56
        for (index, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * index) }
        return value
    }

    private static func isNull(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let word = packed(bytes) else { return false }
        return nulls.contains(word)
    }

    private static func boolean(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard let word = packed(bytes) else { return nil }
        if trues.contains(word) { return true }
        if falses.contains(word) { return false }
        return nil
    }

    /// A YAML 1.1 integer or float as JSON number text: the source text itself when it is already
    /// valid JSON, otherwise its decimal form (`0x1F` is 31, `+5` is 5, `1_000` is 1000).
    static func number(_ utf8: UnsafeBufferPointer<UInt8>) -> NumberText? {
        guard let first = utf8.first, startsNumber(first) else { return nil }
        if isJSONNumber(utf8) { return .asWritten }
        // Quantities such as `100m` and `64Mi` start like numbers: one byte no number form uses
        // rules them out before the slower forms are tried.
        guard utf8.allSatisfy(mayBeInNumber) else { return nil }
        var digits = utf8.filter { $0 != UInt8(ascii: "_") }
        var negative = false
        if let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            digits.removeFirst()
        }
        guard !digits.isEmpty else { return nil }
        let body = String(decoding: digits, as: UTF8.self)
        if let integer = integer(body) {
            if integer == 0 { return .canonical("0") }
            return .canonical((negative ? "-" : "") + String(integer))
        }
        if isYAMLFloat(digits), let value = Double(body), value.isFinite {
            var canonical = (negative ? "-" : "") + canonicalDecimal(body)
            return .canonical(canonical.withUTF8(isJSONNumber) ? canonical : String(negative ? -value : value))
        }
        return nil
    }

    /// Go's base-0 integer forms: 0x.., 0o.., 0b.., a leading 0 for octal, or decimal.
    private static func integer(_ body: String) -> UInt64? {
        if body.hasPrefix("0x") || body.hasPrefix("0X") { return UInt64(body.dropFirst(2), radix: 16) }
        if body.hasPrefix("0o") || body.hasPrefix("0O") { return UInt64(body.dropFirst(2), radix: 8) }
        if body.hasPrefix("0b") || body.hasPrefix("0B") { return UInt64(body.dropFirst(2), radix: 2) }
        if body.count > 1, body.hasPrefix("0") { return UInt64(body.dropFirst(), radix: 8) }
        return UInt64(body, radix: 10)
    }

    /// `^(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, the float form go-yaml accepts.
    private static func isYAMLFloat(_ digits: [UInt8]) -> Bool {
        var index = 0
        func isDigit(_ i: Int) -> Bool { i < digits.count && digits[i] >= 48 && digits[i] <= 57 }
        let mantissaStart = index
        while isDigit(index) { index += 1 }
        let integerDigits = index - mantissaStart
        if index < digits.count, digits[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while isDigit(index) { index += 1 }
            if integerDigits == 0 && index == fractionStart { return false }
        } else if integerDigits == 0 {
            return false
        }
        if index < digits.count, digits[index] == UInt8(ascii: "e") || digits[index] == UInt8(ascii: "E") {
            index += 1
            if index < digits.count, digits[index] == UInt8(ascii: "-") || digits[index] == UInt8(ascii: "+") { index += 1 }
            let exponentStart = index
            while isDigit(index) { index += 1 }
            if index == exponentStart { return false }
        }
        return index == digits.count
    }

    /// Makes `.5` into `0.5` and `5.` into `5.0`, and drops leading zeros, so the text is JSON.
    private static func canonicalDecimal(_ body: String) -> String {
        var text = body
        if text.hasPrefix(".") { text = "0" + text }
        if let dot = text.firstIndex(of: ".") {
            let after = text.index(after: dot)
            if after == text.endIndex || !(text[after].isNumber) {
                text.insert("0", at: after)
            }
        }
        while text.count > 1, text.hasPrefix("0"), text[text.index(after: text.startIndex)].isNumber {
            text.removeFirst()
        }
        return text
    }

    /// RFC 8259's number grammar.
    static func isJSONNumber(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 48 && bytes[i] <= 57 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { return false }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
            guard isDigit(index) else { return false }
            while isDigit(index) { index += 1 }
        }
        return index == bytes.count
    }

    /// `2001-12-14` or `2001-12-14T21:59:43Z`: go-yaml reads these as times, which then come out
    /// reformatted, so the writer quotes anything that starts like a date.
    private static func looksLikeTimestamp(_ text: String) -> Bool {
        guard let first = text.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return false }
        let bytes = Array(text.utf8.prefix(10))
        guard bytes.count == 10 else { return false }
        for (index, byte) in bytes.enumerated() {
            let isDigit = byte >= 48 && byte <= 57
            if index == 4 || index == 7 {
                if byte != UInt8(ascii: "-") { return false }
            } else if !isDigit {
                return false
            }
        }
        return true
    }
}
