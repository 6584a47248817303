import Document

/// Compact JSON text for the `tandem.io/status` annotation, and back.
///
/// The status is small and written only by us, so a minimal codec keeps this module free of
/// I/O-layer dependencies. (Once Document's reader and writer land, these two functions should
/// call them instead.)
enum StatusCodec {
    static func encode(_ value: JSON) -> String {
        var out = ""
        write(value, to: &out)
        return out
    }

    private static func write(_ value: JSON, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let bool): out += bool ? "true" : "false"
        case .number(let text): out += text
        case .string(let string): writeString(string, to: &out)
        case .array(let array):
            out += "["
            for (index, element) in array.enumerated() {
                if index > 0 { out += "," }
                write(element, to: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (index, (key, member)) in object.members.enumerated() {
                if index > 0 { out += "," }
                writeString(key, to: &out)
                out += ":"
                write(member, to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Parses what `encode` writes (any JSON, in fact); nil for malformed text.
    static func decode(_ text: String) -> JSON? {
        var parser = Parser(scalars: Array(text.unicodeScalars))
        guard let value = parser.value() else { return nil }
        parser.skipSpace()
        return accept(parser.index == parser.scalars.count, value)
    }

    /// `value` when `ok`. (A ternary with `nil` would build JSON's null: JSON is nil-literal expressible.)
    private static func accept(_ ok: Bool, _ value: JSON) -> JSON? {
        guard ok else { return Optional.none }
        return value
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0
        var depth = 0

        mutating func skipSpace() {
            while index < scalars.count, [" ", "\n", "\r", "\t"].contains(scalars[index]) { index += 1 }
        }

        mutating func consume(_ literal: String) -> Bool {
            let expected = Array(literal.unicodeScalars)
            guard index + expected.count <= scalars.count,
                  Array(scalars[index..<index + expected.count]) == expected
            else { return false }
            index += expected.count
            return true
        }

        mutating func value() -> JSON? {
            skipSpace()
            guard index < scalars.count, depth < 64 else { return nil }
            switch scalars[index] {
            case "{":
                index += 1
                depth += 1
                defer { depth -= 1 }
                var object = JSONObject()
                skipSpace()
                if consume("}") { return .object(object) }
                repeat {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard consume(":"), let member = value(), object[key] == nil else { return nil }
                    object.appendUnchecked(key: key, value: member)
                    skipSpace()
                } while consume(",")
                return StatusCodec.accept(consume("}"), .object(object))
            case "[":
                index += 1
                depth += 1
                defer { depth -= 1 }
                var array: [JSON] = []
                skipSpace()
                if consume("]") { return .array(array) }
                repeat {
                    guard let element = value() else { return nil }
                    array.append(element)
                    skipSpace()
                } while consume(",")
                return StatusCodec.accept(consume("]"), .array(array))
            case "\"":
                return string().map(JSON.string)
            case "t": return StatusCodec.accept(consume("true"), .bool(true))
            case "f": return StatusCodec.accept(consume("false"), .bool(false))
            case "n": return StatusCodec.accept(consume("null"), .null)
            default:
                let start = index
                while index < scalars.count, "+-0123456789.eE".unicodeScalars.contains(scalars[index]) { index += 1 }
                guard index > start else { return nil }
                var text = ""
                text.unicodeScalars.append(contentsOf: scalars[start..<index])
                guard Double(text) != nil else { return nil }
                return .number(text)
            }
        }

        mutating func string() -> String? {
            guard consume("\"") else { return nil }
            var out = ""
            while index < scalars.count {
                let scalar = scalars[index]
                index += 1
                switch scalar {
                case "\"": return out
                case "\\":
                    guard index < scalars.count else { return nil }
                    let escape = scalars[index]
                    index += 1
                    switch escape {
                    case "\"", "\\", "/": out.unicodeScalars.append(escape)
                    case "n": out += "\n"
                    case "r": out += "\r"
                    case "t": out += "\t"
                    case "b": out += "\u{8}"
                    case "f": out += "\u{c}"
                    case "u":
                        guard let unit = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(unit) {
                            guard consume("\\u"), let low = hex4(), (0xDC00..<0xE000).contains(low),
                                  let combined = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                            else { return nil }
                            out.unicodeScalars.append(combined)
                        } else {
                            guard let decoded = Unicode.Scalar(unit) else { return nil }
                            out.unicodeScalars.append(decoded)
                        }
                    default: return nil
                    }
                default:
                    out.unicodeScalars.append(scalar)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= scalars.count else { return nil }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars[index..<index + 4])
            index += 4
            return UInt32(text, radix: 16)
        }
    }
}
