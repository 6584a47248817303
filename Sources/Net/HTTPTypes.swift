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
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)]

    public init() { fields = [] }
    /// Room for `capacity` fields up front: one allocation for a parsed head, not one per doubling.
    init(capacity: Int) {
        fields = []
        fields.reserveCapacity(capacity)
    }
    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public mutating func add(_ name: String, _ value: String) { fields.append((name: name, value: value)) }

    /// Replaces every field with this name by one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) { fields.removeAll { asciiEqualFold($0.name, name) } }

    /// The first value of the field, if any.
    public subscript(name: String) -> String? {
        for field in fields where asciiEqualFold(field.name, name) { return field.value }
        return nil
    }

    public func values(_ name: String) -> [String] {
        fields.filter { asciiEqualFold($0.name, name) }.map(\.value)
    }

    /// Comma-separated list elements of every field with this name, trimmed and lowercased.
    public func tokens(_ name: String) -> [String] {
        var result: [String] = []
        for field in fields where asciiEqualFold(field.name, name) {
            for part in field.value.split(separator: ",") {
                let token = trimOWS(Substring(part))
                if !token.isEmpty { result.append(asciiLowercased(token)) }
            }
        }
        return result
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Whether a comma-separated list field contains `token` (ASCII case-insensitive), without
    /// allocating: this runs for every request (Connection, Expect).
    public func containsToken(_ name: String, _ token: String) -> Bool {
        var token = token
        return token.withUTF8 { wanted in
            for field in fields where asciiEqualFold(field.name, name) {
                var value = field.value
                let found = value.withUTF8 { bytes in
                    var start = 0
                    while start <= bytes.count {
                        var end = start
                        while end < bytes.count && bytes[end] != 0x2C { end += 1 }
                        var first = start, last = end
                        while first < last && (bytes[first] == sp || bytes[first] == htab) { first += 1 }
                        while last > first && (bytes[last - 1] == sp || bytes[last - 1] == htab) { last -= 1 }
                        if last - first == wanted.count
                            && (0..<wanted.count).allSatisfy({ asciiLower(bytes[first + $0]) == asciiLower(wanted[$0]) }) {
                            return true
                        }
                        start = end + 1
                    }
                    return false
                }
                if found { return true }
            }
            return false
        }
    }

    /// How many fields have this name.
    public func count(_ name: String) -> Int {
        var count = 0
        for field in fields where asciiEqualFold(field.name, name) { count += 1 }
        return count
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
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
        return target[target.utf8.index(after: mark)...]
    }
    /// Searched as a byte: a search by Character walks grapheme clusters, for every request.
    private var queryMark: String.Index? { target.utf8.firstIndex(of: UInt8(ascii: "?")) }

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

func asciiEqualFold(_ lhs: String, _ rhs: String) -> Bool {
    // Most names differ in length, which a String knows without a look at its bytes.
    guard lhs.utf8.count == rhs.utf8.count else { return false }
    var lhs = lhs, rhs = rhs
    return lhs.withUTF8 { a in
        rhs.withUTF8 { b in
            guard a.count == b.count else { return false }
            for i in 0..<a.count where asciiLower(a[i]) != asciiLower(b[i]) { return false }
            return true
        }
    }
}

func asciiLowercased(_ text: Substring) -> String {
    String(decoding: text.utf8.map(asciiLower), as: UTF8.self)
}

func trimOWS(_ text: Substring) -> Substring {
    var text = text
    while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
    while let last = text.last, last == " " || last == "\t" { text.removeLast() }
    return text
}
