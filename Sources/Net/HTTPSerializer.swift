/// Writes HTTP/1.1 heads and chunked framing. Refuses fields that would split a message
/// (CR, LF, NUL in values, non-token names) rather than emit them.
public enum HTTPSerializer {
    public static func write(_ head: HTTPRequestHead, into buffer: inout [UInt8]) throws(HTTPSerializeError) {
        guard !head.method.rawValue.isEmpty, append(head.method.rawValue, into: &buffer, if: isTokenByte) else {
            throw HTTPSerializeError("invalid method \(head.method)")
        }
        buffer.append(sp)
        guard !head.target.isEmpty, append(head.target, into: &buffer, if: { $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPSerializeError("invalid request target")
        }
        buffer.append(sp)
        appendVersion(head.version, into: &buffer)
        buffer.append(cr); buffer.append(lf)
        try writeFields(head.headers, into: &buffer)
    }

    public static func write(_ head: HTTPResponseHead, into buffer: inout [UInt8]) throws(HTTPSerializeError) {
        try writeResponseHead(status: head.status, reason: head.reason, version: head.version, headers: head.headers,
                              contentLength: nil, connection: nil, into: &buffer)
    }

    /// Writes a response head from its parts, adding `Content-Length` and `Connection` without
    /// building header fields for them; `connection` replaces any Connection field in `headers`.
    /// The server passes a handler's fields as they are: an HTTPResponseHead, or a field added to
    /// them, would copy them for every response.
    static func writeResponseHead(status: Int, reason: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders,
                                  contentLength: Int?, connection: StaticString?,
                                  into buffer: inout [UInt8]) throws(HTTPSerializeError) {
        guard (100...999).contains(status) else { throw HTTPSerializeError("invalid status \(status)") }
        appendVersion(version, into: &buffer)
        buffer.append(sp)
        buffer.append(0x30 + UInt8(status / 100))
        buffer.append(0x30 + UInt8(status / 10 % 10))
        buffer.append(0x30 + UInt8(status % 10))
        buffer.append(sp)
        guard append(reason, into: &buffer, if: isFieldValueByte) else { throw HTTPSerializeError("invalid reason phrase") }
        buffer.append(cr); buffer.append(lf)
        if let contentLength {
            append("Content-Length: ", into: &buffer)
            appendDecimal(contentLength, into: &buffer)
            buffer.append(cr); buffer.append(lf)
        }
        if let connection {
            append("Connection: ", into: &buffer)
            append(connection, into: &buffer)
            buffer.append(cr); buffer.append(lf)
        }
        try writeFields(headers, skipping: connection == nil ? nil : "connection", into: &buffer)
    }

    /// One chunk of a chunked body; an empty chunk is skipped (it would end the body).
    public static func writeChunk(_ bytes: UnsafeRawBufferPointer, into buffer: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        appendHex(bytes.count, into: &buffer)
        buffer.append(cr); buffer.append(lf)
        buffer.append(contentsOf: bytes)
        buffer.append(cr); buffer.append(lf)
    }

    public static func writeChunk(_ bytes: [UInt8], into buffer: inout [UInt8]) {
        bytes.withUnsafeBytes { writeChunk($0, into: &buffer) }
    }

    /// The last chunk and the trailer section that end a chunked body.
    public static func writeLastChunk(trailers: HTTPHeaders = HTTPHeaders(), into buffer: inout [UInt8]) throws(HTTPSerializeError) {
        buffer.append(0x30)
        buffer.append(cr); buffer.append(lf)
        try writeFields(trailers, into: &buffer)
    }

    /// `skipped` is a literal: a name made into bytes for the comparison cost an array per response.
    private static func writeFields(_ headers: HTTPHeaders, skipping skipped: StaticString? = nil,
                                    into buffer: inout [UInt8]) throws(HTTPSerializeError) {
        var failure: HTTPSerializeError?
        // Fields are held as bytes: checked and copied as they are, no String on the way.
        headers.forEachField { name, value in
            guard failure == nil else { return }
            if let skipped, asciiEqualFold(name, skipped) { return }
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else {
                failure = HTTPSerializeError("invalid header name \(String(decoding: name, as: UTF8.self).debugDescription)")
                return
            }
            guard isFieldValue(value) else {
                failure = HTTPSerializeError("invalid value for header \(String(decoding: name, as: UTF8.self))")
                return
            }
            buffer.append(contentsOf: name)
            buffer.append(colonByte)
            buffer.append(sp)
            buffer.append(contentsOf: value)
            buffer.append(cr); buffer.append(lf)
        }
        if let failure { throw failure }
        buffer.append(cr); buffer.append(lf)
    }

    /// Whether every byte may stand in a field value, checked eight at a time while they are
    /// plain text (the parser's test), then one at a time.
    private static func isFieldValue(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index + 8 <= bytes.count {
            let plain = plainFieldTextCount(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            index += plain
            if plain < 8 { break }
        }
        return bytes[index...].allSatisfy(isFieldValueByte)
    }

    /// Appends `text` if every byte passes `allowed`, checking and copying its contiguous UTF-8
    /// in one go (a byte-at-a-time walk of `String.UTF8View` costs more than the copy). On
    /// failure the buffer holds a partial message: callers discard it with the error.
    @inline(__always)
    private static func append(_ text: String, into buffer: inout [UInt8], if allowed: (UInt8) -> Bool) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            for byte in bytes where !allowed(byte) { return false }
            buffer.append(contentsOf: bytes)
            return true
        }
    }

    /// Appends a literal's bytes as they sit in the binary; appending a String literal's UTF-8
    /// view goes through the String (retain, walk, release).
    @inline(__always)
    private static func append(_ literal: StaticString, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    private static func appendVersion(_ version: HTTPVersion, into buffer: inout [UInt8]) {
        append("HTTP/1.", into: &buffer)
        buffer.append(version.minor == 0 ? 0x30 : 0x31)
    }

    private static func appendHex(_ value: Int, into buffer: inout [UInt8]) {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        while shift >= 0 {
            buffer.append(digits[(value >> shift) & 0xF])
            shift -= 4
        }
    }

    /// Decimal digits of a non-negative integer (Content-Length), without String formatting:
    /// written last digit first into a word, then appended in one go.
    static func appendDecimal(_ value: Int, into buffer: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for Int.max's 19 digits
        withUnsafeMutableBytes(of: &digits) { digits in
            var rest = value, start = digits.count
            repeat {
                start -= 1
                digits[start] = 0x30 + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[start...]))
        }
    }
}

@inline(__always) func isFieldValueByte(_ byte: UInt8) -> Bool {
    byte == htab || (byte >= 0x20 && byte != 0x7F)
}

public struct HTTPSerializeError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
