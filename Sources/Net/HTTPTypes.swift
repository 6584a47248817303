import Glibc

/// HTTP message values shared by the parser, the serializer, the server and the client.

/// A request method; any token is allowed, the common ones have names.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let get = HTTPMethod("GET")
    public static let head = HTTPMethod("HEAD")
    public static let post = HTTPMethod("POST")
    public static let put = HTTPMethod("PUT")
    public static let patch = HTTPMethod("PATCH")
    public static let delete = HTTPMethod("DELETE")
    public static let options = HTTPMethod("OPTIONS")
    public static let connect = HTTPMethod("CONNECT")
}

/// HTTP/1.0 or HTTP/1.1: the only versions this codec speaks.
public struct HTTPVersion: Hashable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public init(major: Int, minor: Int) { self.major = major; self.minor = minor }
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// Header fields in arrival order; names compare case-insensitively (ASCII).
///
/// Kept as bytes: a parsed head is one copy of its header block plus one small record per field,
/// so it costs two allocations whatever its size, lookups compare bytes, and a proxy copies fields
/// on (`forEachField`) without making a String of each.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    /// Where one field's name and value lie in `storage`.
    private struct Field: Sendable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
    }

    private var storage: [UInt8] = []
    private var fields: [Field] = []
    /// Whether `storage` is still a parsed block as it arrived, one `name: value` line per field
    /// in order, each ending in CRLF: then fields can be copied on as whole lines.
    private var isParsedBlock = false

    public init() {}
    public init(_ fields: [(String, String)]) {
        for (name, value) in fields { add(name, value) }
    }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    /// Headers over a copy of a parsed header block of at most `lines` fields, which
    /// `appendParsed` then names.
    init(block: UnsafeRawBufferPointer, lines: Int) {
        storage = Array(block)
        isParsedBlock = true
        if lines > 0 { fields.reserveCapacity(lines) }
    }

    /// Adds a field whose name and value are at these offsets of the block given to `init(block:)`.
    mutating func appendParsed(name: Range<Int>, value: Range<Int>) {
        fields.append(Field(nameStart: Int32(name.lowerBound), nameEnd: Int32(name.upperBound),
                            valueStart: Int32(value.lowerBound), valueEnd: Int32(value.upperBound)))
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public mutating func add(_ name: String, _ value: String) {
        isParsedBlock = false
        let nameStart = storage.count
        storage.append(contentsOf: name.utf8)
        let valueStart = storage.count
        storage.append(contentsOf: value.utf8)
        fields.append(Field(nameStart: Int32(nameStart), nameEnd: Int32(valueStart),
                            valueStart: Int32(valueStart), valueEnd: Int32(storage.count)))
    }

    /// Replaces every field with this name by one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    /// Removes the fields (their bytes stay in the storage until the value is dropped).
    public mutating func remove(_ name: String) {
        isParsedBlock = false
        let storage = self.storage
        var name = name
        name.withUTF8 { query in
            storage.withUnsafeBytes { bytes in
                fields.removeAll { Self.nameMatches($0, UnsafeRawBufferPointer(query), in: bytes) }
            }
        }
    }

    /// The first value of the field, if any.
    public subscript(name: String) -> String? {
        guard let index = firstIndex(of: name) else { return nil }
        return string(fields[index].valueStart, fields[index].valueEnd)
    }

    public func values(_ name: String) -> [String] {
        indices(of: name).map { string(fields[$0].valueStart, fields[$0].valueEnd) }
    }

    /// Comma-separated list elements of every field with this name, trimmed and lowercased.
    public func tokens(_ name: String) -> [String] {
        var result: [String] = []
        forEachElement(of: name) { element in
            if !element.isEmpty { result.append(String(decoding: element.lazy.map(asciiLower), as: UTF8.self)) }
        }
        return result
    }

    public func contains(_ name: String) -> Bool { firstIndex(of: name) != nil }

    /// The first value of the field as bytes, nil when there is none, without making a String:
    /// valid only during the call.
    public func withFirstValue<Result>(of name: String, _ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        guard let index = firstIndex(of: name) else { return body(nil) }
        let field = fields[index]
        return storage.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[Int(field.valueStart)..<Int(field.valueEnd)])) }
    }

    /// Whether a comma-separated list field contains `token` (ASCII case-insensitive), without
    /// allocating: this runs for every request (Connection, Expect).
    public func containsToken(_ name: String, _ token: String) -> Bool {
        var token = token
        return token.withUTF8 { containsToken(name, UnsafeRawBufferPointer($0)) }
    }

    /// `containsToken` for a token given as bytes (a proxy asks whether Connection names a field).
    public func containsToken(_ name: String, _ token: UnsafeRawBufferPointer) -> Bool {
        var found = false
        forEachElement(of: name) { element in
            if !found && asciiEqualFold(element, token) { found = true }
        }
        return found
    }

    /// How many fields have this name.
    public func count(_ name: String) -> Int {
        var count = 0
        forEachValue(of: name) { _ in count += 1 }
        return count
    }

    /// Each field's name and value as bytes, in order, without making Strings: for code that
    /// copies fields on. The buffers are valid only during the call.
    public func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        storage.withUnsafeBytes { bytes in
            for field in fields {
                body(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.nameEnd)]),
                         UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]))
            }
        }
    }

    /// Appends the fields `keep` accepts as `name: value` lines ending in CRLF. The fields of a
    /// parsed head go out as they arrived, each run of kept lines in one copy: a proxy forwards a
    /// head with a copy or two rather than several appends per field.
    public func writeFields(into buffer: inout [UInt8], keeping keep: (_ name: UnsafeRawBufferPointer) -> Bool) {
        storage.withUnsafeBytes { bytes in
            guard isParsedBlock else {
                for field in fields {
                    let name = UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.nameEnd)])
                    guard keep(name) else { continue }
                    buffer.append(contentsOf: name)
                    buffer.append(colonByte)
                    buffer.append(sp)
                    buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]))
                    buffer.append(cr)
                    buffer.append(lf)
                }
                return
            }
            // A field's line runs from its name to the next field's name (or the block's end).
            var runStart = 0
            for index in fields.indices {
                let field = fields[index]
                if keep(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.nameEnd)])) { continue }
                let lineStart = Int(field.nameStart)
                if lineStart > runStart { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<lineStart])) }
                runStart = index + 1 < fields.count ? Int(fields[index + 1].nameStart) : bytes.count
            }
            if runStart < bytes.count { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart...])) }
        }
    }

    /// The value of every field with this name, as bytes, in order (valid only during the call).
    /// Not generic and not throwing, so callers in other modules need no generic metadata.
    public func forEachValue(of name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        var name = name
        name.withUTF8 { query in
            storage.withUnsafeBytes { bytes in
                for field in fields where Self.nameMatches(field, UnsafeRawBufferPointer(query), in: bytes) {
                    body(UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]))
                }
            }
        }
    }

    /// The comma-separated elements of every field with this name, as bytes, with optional
    /// whitespace trimmed (empty elements included).
    public func forEachElement(of name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        forEachValue(of: name) { forEachListElement($0, body) }
    }

    private func indices(of name: String) -> [Int] {
        var name = name
        return name.withUTF8 { query in
            storage.withUnsafeBytes { bytes in
                fields.indices.filter { Self.nameMatches(fields[$0], UnsafeRawBufferPointer(query), in: bytes) }
            }
        }
    }

    private func firstIndex(of name: String) -> Int? {
        var name = name
        return name.withUTF8 { query in
            storage.withUnsafeBytes { bytes in
                fields.indices.first { Self.nameMatches(fields[$0], UnsafeRawBufferPointer(query), in: bytes) }
            }
        }
    }

    @inline(__always)
    private static func nameMatches(_ field: Field, _ query: UnsafeRawBufferPointer, in bytes: UnsafeRawBufferPointer) -> Bool {
        asciiEqualFold(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.nameEnd)]), query)
    }

    private func string(_ start: Int32, _ end: Int32) -> String {
        storage.withUnsafeBytes { String(decoding: $0[Int(start)..<Int(end)], as: UTF8.self) }
    }

    public struct Iterator: IteratorProtocol {
        let headers: HTTPHeaders
        var index = 0
        public mutating func next() -> (name: String, value: String)? {
            guard index < headers.fields.count else { return nil }
            let field = headers.fields[index]
            index += 1
            return (headers.string(field.nameStart, field.nameEnd), headers.string(field.valueStart, field.valueEnd))
        }
    }

    public func makeIterator() -> Iterator { Iterator(headers: self) }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        guard lhs.fields.count == rhs.fields.count else { return false }
        return lhs.storage.withUnsafeBytes { left in
            rhs.storage.withUnsafeBytes { right in
                zip(lhs.fields, rhs.fields).allSatisfy { a, b in
                    left[Int(a.nameStart)..<Int(a.nameEnd)].elementsEqual(right[Int(b.nameStart)..<Int(b.nameEnd)])
                        && left[Int(a.valueStart)..<Int(a.valueEnd)].elementsEqual(right[Int(b.valueStart)..<Int(b.valueEnd)])
                }
            }
        }
    }
}

/// The start line and headers of a request, with the framing facts the parser derived.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: HTTPMethod
    /// The request target as sent (origin form `/path?query` for ordinary requests).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// The target up to `?`.
    public var path: Substring { target[..<(queryMark ?? target.endIndex)] }
    /// The target after `?`, if any.
    public var query: Substring? {
        guard let mark = queryMark else { return nil }
        return target[target.index(after: mark)...]
    }
    private var queryMark: String.Index? {
        var target = target
        return target.withUTF8(Self.queryOffset).map { target.utf8.index(target.utf8.startIndex, offsetBy: $0) }
    }

    /// The path's UTF-8, valid during the call: what the server routes on, for every request,
    /// where making the `path` Substring (its index checks) cost 300 instructions.
    func withPath<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        var target = target
        return target.withUTF8 { bytes in body(UnsafeBufferPointer(rebasing: bytes[..<(Self.queryOffset(bytes) ?? bytes.count)])) }
    }

    /// Where `?` is, found by `memchr`: a search of the UTF-8 view took a dozen instructions a
    /// byte, and one by Character walks grapheme clusters, for every request.
    private static func queryOffset(_ target: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let start = target.baseAddress, let mark = memchr(start, 0x3F, target.count) else { return nil }
        return UnsafeRawPointer(start).distance(to: mark)
    }

    /// Whether the connection may carry another message after this one.
    public var keepAlive: Bool { connectionKeepAlive(version: version, headers: headers) }
    /// Whether the client waits for `100 Continue` before sending the body.
    public var expectsContinue: Bool {
        headers.containsToken("expect", "100-continue")
    }
}

/// The status line and headers of a response.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    public init(status: Int, reason: String? = nil, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.reason = reason ?? HTTPResponseHead.reasonPhrase(status)
        self.version = version
        self.headers = headers
    }

    public var keepAlive: Bool { connectionKeepAlive(version: version, headers: headers) }

    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}

func connectionKeepAlive(version: HTTPVersion, headers: HTTPHeaders) -> Bool {
    if headers.containsToken("connection", "close") { return false }
    return version == .http1_1 || headers.containsToken("connection", "keep-alive")
}

// MARK: - ASCII helpers (no locale, no Foundation)

@inline(__always) func asciiLower(_ byte: UInt8) -> UInt8 {
    byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
}

/// ASCII case-insensitive equality of two byte strings.
@inline(__always) public func asciiEqualFold(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
    guard lhs.count == rhs.count else { return false }
    for i in 0..<lhs.count where asciiLower(lhs[i]) != asciiLower(rhs[i]) { return false }
    return true
}

/// The comma-separated elements of one field value, with optional whitespace trimmed (empty
/// elements included).
func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    var start = 0
    while start <= value.count {
        var end = start
        while end < value.count && value[end] != 0x2C { end += 1 }
        body(trimmingOWS(UnsafeRawBufferPointer(rebasing: value[start..<end])))
        start = end + 1
    }
}

/// `asciiEqualFold` against a literal, read where it sits in the binary.
@inline(__always) func asciiEqualFold(_ lhs: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    asciiEqualFold(lhs, UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}

/// `bytes` without leading and trailing spaces and tabs (RFC 9110 optional whitespace).
func trimmingOWS(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var start = 0, end = bytes.count
    while start < end && (bytes[start] == sp || bytes[start] == htab) { start += 1 }
    while end > start && (bytes[end - 1] == sp || bytes[end - 1] == htab) { end -= 1 }
    return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
}
