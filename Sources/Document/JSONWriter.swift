/// Writes `JSON` as compact or indented UTF-8 text, appending to a byte buffer.
///
/// The output matches Go's `encoding/json` as the apiserver and kubectl write it (keys in order,
/// numbers as read, non-ASCII as UTF-8, `/` unescaped), so compact input read and written again
/// comes out byte for byte. `indent: 4` gives kubectl's `-o json` layout.
public enum JSONWriter {
    public static func write(_ value: JSON, indent: Int = 0) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4096)
        write(value, indent: indent, into: &buffer)
        return buffer
    }

    public static func string(_ value: JSON, indent: Int = 0) -> String {
        String(decoding: write(value, indent: indent), as: UTF8.self)
    }

    /// Appends the text of `value` to `buffer`; for callers that assemble larger messages.
    public static func write(_ value: JSON, indent: Int = 0, into buffer: inout [UInt8]) {
        if indent > 0 {
            writeIndented(value, indent: indent, level: 0, into: &buffer)
        } else {
            var copies: [JSONWrittenTexts.Copy] = []
            writeCompact(value, into: &buffer, reusing: nil, copies: &copies)
        }
    }

    /// Appends the compact text of `value`, copying the text of any object in `texts` instead of
    /// writing it again.
    public static func write(_ value: JSON, into buffer: inout [UInt8], reusing texts: JSONWrittenTexts) {
        var copies: [JSONWrittenTexts.Copy] = []
        write(value, into: &buffer, reusing: texts, copies: &copies)
    }

    /// As `write(_:into:reusing:)`, noting in `copies` where each object of `texts` went.
    public static func write(_ value: JSON, into buffer: inout [UInt8], reusing texts: JSONWrittenTexts,
                             copies: inout [JSONWrittenTexts.Copy]) {
        writeCompact(value, into: &buffer, reusing: texts.isEmpty ? nil : texts, copies: &copies)
    }

    private static func writeCompact(_ value: JSON, into buffer: inout [UInt8], reusing texts: JSONWrittenTexts?,
                                     copies: inout [JSONWrittenTexts.Copy]) {
        switch value {
        case .object(let object):
            if let texts, texts.copy(object, into: &buffer, copies: &copies) { return }
            buffer.append(UInt8(ascii: "{"))
            // Through the buffer: the storage's iterator copied each member (a retain and release).
            object.storage.withUnsafeBufferPointer { members in
                for index in members.indices {
                    if index > 0 { buffer.append(UInt8(ascii: ",")) }
                    writeString(members[index].key, into: &buffer)
                    buffer.append(UInt8(ascii: ":"))
                    writeCompact(members[index].value, into: &buffer, reusing: texts, copies: &copies)
                }
            }
            buffer.append(UInt8(ascii: "}"))
        case .array(let elements):
            buffer.append(UInt8(ascii: "["))
            for index in elements.indices {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                writeCompact(elements[index], into: &buffer, reusing: texts, copies: &copies)
            }
            buffer.append(UInt8(ascii: "]"))
        case .string(let string):
            if let texts, texts.copy(string, into: &buffer, copies: &copies) { return }
            writeString(string, into: &buffer)
        case .number(let text): buffer.append(contentsOf: text.utf8)
        case .bool(true): buffer.append(ascii: "true")
        case .bool(false): buffer.append(ascii: "false")
        case .null: buffer.append(ascii: "null")
        }
    }

    private static func writeIndented(_ value: JSON, indent: Int, level: Int, into buffer: inout [UInt8]) {
        switch value {
        case .object(let object) where !object.isEmpty:
            buffer.append(UInt8(ascii: "{"))
            // Through the buffer, as in `writeCompact`.
            object.storage.withUnsafeBufferPointer { members in
                for index in members.indices {
                    if index > 0 { buffer.append(UInt8(ascii: ",")) }
                    newline(indent * (level + 1), into: &buffer)
                    writeString(members[index].key, into: &buffer)
                    buffer.append(UInt8(ascii: ":"))
                    buffer.append(UInt8(ascii: " "))
                    writeIndented(members[index].value, indent: indent, level: level + 1, into: &buffer)
                }
            }
            newline(indent * level, into: &buffer)
            buffer.append(UInt8(ascii: "}"))
        case .array(let elements) where !elements.isEmpty:
            buffer.append(UInt8(ascii: "["))
            for index in elements.indices {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                newline(indent * (level + 1), into: &buffer)
                writeIndented(elements[index], indent: indent, level: level + 1, into: &buffer)
            }
            newline(indent * level, into: &buffer)
            buffer.append(UInt8(ascii: "]"))
        default:
            var copies: [JSONWrittenTexts.Copy] = []
            writeCompact(value, into: &buffer, reusing: nil, copies: &copies)
        }
    }

    private static func newline(_ spaces: Int, into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\n"))
        buffer.append(contentsOf: repeatElement(UInt8(ascii: " "), count: spaces))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes a quoted string; runs without characters to escape are copied in one piece.
    /// What `write` writes for `.string(string)`, without making the value.
    public static func writeString(_ string: String, into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        if let done: Void = string.utf8.withContiguousStorageIfAvailable({ writeEscaped($0, into: &buffer) }) {
            return done
        }
        var copy = string
        copy.withUTF8 { writeEscaped($0, into: &buffer) }
    }

    /// Writes text given as UTF-8 bytes as a quoted string.
    static func writeString(utf8 bytes: UnsafeBufferPointer<UInt8>, into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        writeEscaped(bytes, into: &buffer)
    }

    /// The body of `writeString`: the UTF-8 of a string, escaped, then the closing quote.
    private static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: inout [UInt8]) {
        var runStart = 0
        // A JSON text inside a string, as the status annotation is, has a quote every few bytes:
        // after each escape the search goes on eight bytes at a time.
        while case let index = TextScan.plainRun(in: bytes, from: runStart).end, index < bytes.count {
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            runStart = index + 1
            let byte = bytes[index]
            buffer.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): buffer.append(byte)
            case 0x08: buffer.append(UInt8(ascii: "b"))
            case 0x0C: buffer.append(UInt8(ascii: "f"))
            case 0x0A: buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(UInt8(ascii: "r"))
            case 0x09: buffer.append(UInt8(ascii: "t"))
            default:
                buffer.append(ascii: "u00")
                buffer.append(hexDigits[Int(byte >> 4)])
                buffer.append(hexDigits[Int(byte & 0xF)])
            }
        }
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        buffer.append(UInt8(ascii: "\""))
    }
}

extension Array where Element == UInt8 {
    /// Appends fixed text in one piece, for every writer of JSON and of answers: about half the
    /// cost of appending a `String`'s UTF-8. Not inlinable: inlined into the webhook's answer, it
    /// made a second copy of the append there that cost a hundred instructions more a review.
    public mutating func append(ascii text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }
}

/// The compact text of particular objects and strings, written once. An object that is one of
/// these (the same storage, not merely equal, so certainly the same members) or a string equal to
/// one is copied as text rather than written again: the containers and status record the injector
/// adds are the same few values in every pod of a workload. Their text is base64-encoded once
/// too, for the patches that carry them.
public struct JSONWrittenTexts: Sendable {
    /// Where the text of one of the objects or strings was copied into a larger text, and which
    /// of `encodings` is its. An index, not the encodings: a copy of those retained them, and
    /// the list of copies released them again.
    public typealias Copy = (start: Int, entry: Int)

    private let objects: [(object: JSONObject, text: [UInt8])]
    private let strings: [(string: String, length: Int, text: [UInt8])]
    /// The base64 encodings of the texts, the objects' and then the strings'.
    public let encodings: [Base64.Encodings]

    public init(_ objects: [JSONObject], strings: [String] = []) {
        let objects = objects.map { object in (object: object, text: JSONWriter.write(.object(object))) }
        self.init(objects: objects, objectEncodings: objects.map { Base64.Encodings($0.text) }, strings: strings)
    }

    /// The same objects with `strings` instead of these strings; the objects are not written again.
    public func with(strings: [String]) -> JSONWrittenTexts {
        JSONWrittenTexts(objects: objects, objectEncodings: Array(encodings[..<objects.count]), strings: strings)
    }

    private init(objects: [(object: JSONObject, text: [UInt8])], objectEncodings: [Base64.Encodings], strings: [String]) {
        self.objects = objects
        self.strings = strings.map { string in (string, string.utf8.count, JSONWriter.write(.string(string))) }
        encodings = objectEncodings + self.strings.map { Base64.Encodings($0.text) }
    }

    var isEmpty: Bool { objects.isEmpty && strings.isEmpty }

    /// Appends the text of `object` if it is one of these objects, noting the copy; false if not.
    func copy(_ object: JSONObject, into buffer: inout [UInt8], copies: inout [Copy]) -> Bool {
        objects.withUnsafeBufferPointer { objects in
            guard let index = objects.indices.first(where: { objects[$0].object.sharesStorage(with: object) }) else {
                return false
            }
            copies.append((buffer.count, index))
            buffer.append(contentsOf: objects[index].text.withUnsafeBufferPointer { $0 })
            return true
        }
    }

    /// Appends the text of `string` if it is one of these strings, noting the copy; false if not.
    /// Lengths rule out nearly every string before a comparison.
    /// Both look at the entries where they are stored, and append a text through its bytes: a
    /// copy of an entry retained and released its object or string and its text.
    func copy(_ string: String, into buffer: inout [UInt8], copies: inout [Copy]) -> Bool {
        guard !strings.isEmpty else { return false }
        let length = string.utf8.count
        return strings.withUnsafeBufferPointer { strings in
            guard let index = strings.indices.first(where: { strings[$0].length == length && strings[$0].string == string }) else {
                return false
            }
            copies.append((buffer.count, objects.count + index))
            buffer.append(contentsOf: strings[index].text.withUnsafeBufferPointer { $0 })
            return true
        }
    }
}

extension JSON: CustomStringConvertible {
    /// The compact JSON text, so test failures and log lines show documents as JSON.
    public var description: String { JSONWriter.string(self) }
}
