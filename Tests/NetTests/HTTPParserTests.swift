import Testing
@testable import Net

struct ValidCase: Sendable, CustomStringConvertible {
    let name: String
    let raw: String
    let kind: HTTPParser.Kind
    let eof: Bool
    let head: Bool
    /// Per message: start line summary ("GET /" or "200"), body text, trailer count.
    let expected: [(String, String, Int)]
    var description: String { name }

    init(_ name: String, _ raw: String, kind: HTTPParser.Kind = .request, eof: Bool = false, head: Bool = false,
         _ expected: [(String, String, Int)]) {
        self.name = name; self.raw = raw; self.kind = kind; self.eof = eof; self.head = head; self.expected = expected
    }
}

let validCases: [ValidCase] = [
    ValidCase("simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", [("GET /", "", 0)]),
    ValidCase("leading empty lines", "\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", [("GET /x", "", 0)]),
    ValidCase("content-length body", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", [("POST /p", "hello", 0)]),
    ValidCase("zero content-length", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", [("POST /p", "", 0)]),
    ValidCase("identical duplicate content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", [("POST /", "abc", 0)]),
    ValidCase("framing fields in any case", "POST /p HTTP/1.1\r\nHOST: a\r\ncontent-LENGTH: 2\r\n\r\nhi", [("POST /p", "hi", 0)]),
    ValidCase("identical content-length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", [("POST /", "abc", 0)]),
    ValidCase("chunked with extension and trailers",
              "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
              [("POST /", "hello0123456789", 2)]),
    ValidCase("chunked case-insensitive coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", [("POST /", "", 0)]),
    ValidCase("pipelined requests",
              "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
              [("GET /1", "", 0), ("POST /2", "ok", 0), ("GET /3", "", 0)]),
    // The parser hands out the last target again when the next is the same: same length but
    // other bytes must not pass for it.
    ValidCase("pipelined long targets, repeated and changed",
              "GET /a-long-target-path?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /a-long-target-path?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
                  + "GET /a-long-target-path?x=2 HTTP/1.1\r\nHost: a\r\n\r\nGET /short HTTP/1.1\r\nHost: a\r\n\r\n"
                  + "GET /a-long-target-path?x=2 HTTP/1.1\r\nHost: a\r\n\r\n",
              [("GET /a-long-target-path?x=1", "", 0), ("GET /a-long-target-path?x=1", "", 0), ("GET /a-long-target-path?x=2", "", 0),
               ("GET /short", "", 0), ("GET /a-long-target-path?x=2", "", 0)]),
    ValidCase("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", [("GET /", "", 0)]),
    ValidCase("header value whitespace trimmed, obs-text kept", "GET / HTTP/1.1\r\nHost:   a \t\r\nX: \u{e9}\r\n\r\n", [("GET /", "", 0)]),
    ValidCase("response with content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", kind: .response, [("200", "hi", 0)]),
    ValidCase("response without reason", "HTTP/1.1 204\r\n\r\n", kind: .response, [("204", "", 0)]),
    ValidCase("response read until close", "HTTP/1.1 200 OK\r\n\r\nstream of bytes", kind: .response, eof: true, [("200", "stream of bytes", 0)]),
    ValidCase("response to HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", kind: .response, head: true, [("200", "", 0)]),
    ValidCase("304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
              kind: .response, [("304", "", 0), ("200", "x", 0)]),
    ValidCase("100 continue then final", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
              kind: .response, [("100", "", -1), ("200", "x", 0)]),
    ValidCase("chunked response with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nEtag: x\r\n\r\n",
              kind: .response, [("200", "abc", 1)]),
    ValidCase("response gzip, chunked keeps framing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
              kind: .response, [("200", "z", 0)]),
]

@Test(arguments: validCases)
func parsesValidMessages(_ testCase: ValidCase) {
    let raw = bytes(testCase.raw)
    // Whole, then split at every byte, then in 3-byte pieces: all must agree.
    for piece in [Int.max, 1, 3] {
        let outcome = parseAll(raw, kind: testCase.kind, piece: piece, eof: testCase.eof, head: testCase.head)
        #expect(outcome.error == nil, "\(testCase.name) piece \(piece)")
        #expect(outcome.messages.count == testCase.expected.count, "\(testCase.name) piece \(piece)")
        for (message, expected) in zip(outcome.messages, testCase.expected) {
            let summary = message.request.map { "\($0.method) \($0.target)" } ?? message.response.map { "\($0.status)" }
            #expect(summary == expected.0)
            #expect(String(decoding: message.body, as: UTF8.self) == expected.1)
            #expect((message.trailers?.count ?? -1) == expected.2)
        }
    }
}

struct ErrorCase: Sendable, CustomStringConvertible {
    let name: String
    let raw: String
    let kind: HTTPParser.Kind
    let error: HTTPParseError
    let status: Int
    var description: String { name }
    init(_ name: String, _ raw: String, kind: HTTPParser.Kind = .request, _ error: HTTPParseError, _ status: Int = 400) {
        self.name = name; self.raw = raw; self.kind = kind; self.error = error; self.status = status
    }
}

let smallLimits = HTTPLimits(maxStartLine: 64, maxHeaderBytes: 256, maxHeaderCount: 5, maxBodyBytes: 16, maxChunkLine: 32)

let errorCases: [ErrorCase] = [
    // Request smuggling: framing that two parsers could read differently.
    ErrorCase("CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .contentLengthWithTransferEncoding),
    ErrorCase("TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", .contentLengthWithTransferEncoding),
    ErrorCase("differing duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", .conflictingContentLength),
    ErrorCase("differing CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\n", .conflictingContentLength),
    ErrorCase("signed CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n", .invalidContentLength),
    ErrorCase("hex CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\n\r\n", .invalidContentLength),
    ErrorCase("empty CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", .invalidContentLength),
    ErrorCase("huge CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", .invalidContentLength),
    ErrorCase("TE not ending in chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", .transferEncodingNotChunked),
    ErrorCase("TE with garbage", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", .transferEncodingNotChunked),
    ErrorCase("TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .unsupportedTransferEncoding, 501),
    ErrorCase("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferEncoding, 501),
    ErrorCase("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10),
    ErrorCase("space before colon", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", .invalidHeaderName),
    ErrorCase("tab in name", "GET / HTTP/1.1\r\nHost: a\r\nX\tY: 1\r\n\r\n", .invalidHeaderName),
    ErrorCase("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", .invalidHeaderName),
    ErrorCase("no colon", "GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", .invalidHeaderName),
    ErrorCase("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", .obsoleteLineFolding),
    ErrorCase("obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", .obsoleteLineFolding),
    ErrorCase("bare LF in headers", "GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", .bareLineFeed),
    ErrorCase("bare LF ending", "GET / HTTP/1.1\nHost: a\n\n", .bareLineFeed),
    ErrorCase("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", .invalidHeaderValue),
    ErrorCase("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .invalidHeaderValue),
    ErrorCase("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", .invalidHeaderValue),
    ErrorCase("CR ending a value, no LF", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", .invalidHeaderValue),
    ErrorCase("colon-less line after a value", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY\r\n\r\n", .invalidHeaderName),
    ErrorCase("missing Host", "GET / HTTP/1.1\r\n\r\n", .missingHost),
    ErrorCase("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .duplicateHost),
    ErrorCase("two Hosts, cased apart", "GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n", .duplicateHost),
    ErrorCase("missing Host before a bad Content-Length", "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", .missingHost),
    ErrorCase("invalid CL before a conflicting one", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, x\r\nContent-Length: 5\r\n\r\n", .invalidContentLength),
    ErrorCase("bad CL before TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n", .invalidContentLength),
    ErrorCase("TE in any case with CL", "POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-encoding: chunked\r\nContent-Length: 4\r\n\r\n", .contentLengthWithTransferEncoding),
    ErrorCase("double space in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ErrorCase("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ErrorCase("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ErrorCase("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion, 505),
    ErrorCase("bad method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ErrorCase("bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", .invalidChunk),
    ErrorCase("chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", .invalidChunk),
    ErrorCase("chunk data without CRLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", .invalidChunk),
    ErrorCase("chunk size bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nab\r\n", .invalidChunk),
    ErrorCase("negative chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", .invalidChunk),
    ErrorCase("response CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", kind: .response, .contentLengthWithTransferEncoding),
    ErrorCase("bad status", "HTTP/1.1 2x0 OK\r\n\r\n", kind: .response, .invalidStatusLine),
    // Found by Hack/fuzz: a response starting with an empty line crashed the head parser.
    ErrorCase("response starting with an empty line", "\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", kind: .response, .invalidStatusLine),
    ErrorCase("status below 100", "HTTP/1.1 099 Low\r\n\r\n", kind: .response, .invalidStatusLine),
]

@Test(arguments: errorCases)
func rejectsAmbiguousOrMalformedMessages(_ testCase: ErrorCase) {
    for piece in [Int.max, 1] {
        let outcome = parseAll(bytes(testCase.raw), kind: testCase.kind, piece: piece)
        #expect(outcome.error == testCase.error, "\(testCase.name) piece \(piece)")
        #expect(outcome.error?.status == testCase.status)
    }
}

@Test func limitsMapToTheirStatus() {
    let longLine = "GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: a\r\n\r\n"
    #expect(parseAll(bytes(longLine), limits: smallLimits).error == .requestLineTooLong)
    #expect(HTTPParseError.requestLineTooLong.status == 414)
    // Detected before the line ends: a slow client cannot make the server buffer forever.
    #expect(parseAll(bytes(String(longLine.prefix(80))), piece: 1, limits: smallLimits).error == .requestLineTooLong)

    let bigHeaders = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 300) + "\r\n\r\n"
    #expect(parseAll(bytes(bigHeaders), limits: smallLimits).error == .headersTooLarge)
    #expect(HTTPParseError.headersTooLarge.status == 431)
    let manyHeaders = "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: 1\r\n", count: 6) + "\r\n"
    #expect(parseAll(bytes(manyHeaders), limits: smallLimits).error == .headersTooLarge)

    let bigBody = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n"
    #expect(parseAll(bytes(bigBody), limits: smallLimits).error == .bodyTooLarge)
    #expect(HTTPParseError.bodyTooLarge.status == 413)
    let bigChunks = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n9\r\n"
    #expect(parseAll(bytes(bigChunks), limits: smallLimits).error == .bodyTooLarge)
    let longChunkLine = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 40)
    #expect(parseAll(bytes(longChunkLine), piece: 1, limits: smallLimits).error == .invalidChunk)
}

/// The limits count the start line up to its CR, and the head up to the CR of its empty line,
/// the same whether the head arrives whole or a byte at a time.
@Test func limitsAreExactAtTheirBoundary() {
    func requestLine(_ length: Int) -> String { "GET /" + String(repeating: "a", count: length - 15) + " HTTP/1.1\r\nHost: a\r\n\r\n" }
    func head(_ length: Int) -> String { "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: length - 32) + "\r\n\r\n" }
    for piece in [Int.max, 1] {
        #expect(parseAll(bytes(requestLine(64)), piece: piece, limits: smallLimits).error == nil)
        #expect(parseAll(bytes(requestLine(65)), piece: piece, limits: smallLimits).error == .requestLineTooLong)
        #expect(parseAll(bytes(head(257)), piece: piece, limits: smallLimits).error == nil)
        #expect(parseAll(bytes(head(258)), piece: piece, limits: smallLimits).error == .headersTooLarge)
    }
}

@Test func truncatedMessagesAreErrorsAtEOF() {
    #expect(parseAll(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"), eof: true).error == .truncatedMessage)
    #expect(parseAll(bytes("GET / HTTP/1.1\r\nHo"), eof: true).error == .truncatedMessage)
    #expect(parseAll(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"), kind: .response, eof: true).error == .truncatedMessage)
    #expect(parseAll(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), eof: true).messages.count == 1)
}

@Test func errorsAreSticky() throws {
    var parser = HTTPParser(.request)
    #expect(throws: HTTPParseError.missingHost) { try parser.parse(bytes("GET / HTTP/1.1\r\n\r\n")) }
    #expect(throws: HTTPParseError.missingHost) { try parser.parse(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) }
}

@Test func headDerivesKeepAliveAndContinue() throws {
    let outcome = parseAll(bytes("POST /p?q=1 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: Keep-Alive, Close\r\nContent-Length: 1\r\n\r\nx"))
    let head = try #require(outcome.messages.first?.request)
    #expect(head.expectsContinue)
    #expect(!head.keepAlive)
    #expect(head.path == "/p")
    #expect(head.query == "q=1")
    #expect(head.headers["HOST"] == "a")
    let old = try #require(parseAll(bytes("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).messages.first?.request)
    #expect(old.keepAlive)
    #expect(!(try #require(parseAll(bytes("GET / HTTP/1.0\r\n\r\n")).messages.first?.request)).keepAlive)
}

@Test func bodyEventsPointIntoTheCallersBuffer() throws {
    var parser = HTTPParser(.request)
    let raw = bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    let (headLength, head) = try parser.parse(raw)
    guard case .requestHead = head else { Issue.record("no head"); return }
    let rest = Array(raw[headLength...])
    let (consumed, body) = try parser.parse(rest)
    #expect(consumed == 3)
    #expect(body == .body(0..<3))
}

@Test func aFixedBodysLengthIsKnownFromItsHead() throws {
    var parser = HTTPParser(.request)
    let raw = bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabc")
    #expect(parser.fixedBodyBytesRemaining == nil)
    let (headLength, _) = try parser.parse(raw)
    #expect(parser.fixedBodyBytesRemaining == 5)
    _ = try parser.parse(Array(raw[headLength...]))
    #expect(parser.fixedBodyBytesRemaining == 2)
    var chunked = HTTPParser(.request)
    _ = try chunked.parse(bytes("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
    #expect(chunked.fixedBodyBytesRemaining == nil)
}

@Test func serializerRoundTripsAndRefusesSplitting() throws {
    var head = HTTPResponseHead(status: 200, headers: ["Content-Type": "text/plain", "Transfer-Encoding": "chunked"])
    var out: [UInt8] = []
    try HTTPSerializer.write(head, into: &out)
    HTTPSerializer.writeChunk(bytes("hello"), into: &out)
    HTTPSerializer.writeChunk(Array(repeating: 0x61, count: 300), into: &out)
    try HTTPSerializer.writeLastChunk(trailers: ["X-Done": "yes"], into: &out)
    let outcome = parseAll(out, kind: .response, piece: 1)
    #expect(outcome.error == nil)
    #expect(outcome.messages.first?.response?.reason == "OK")
    #expect(outcome.messages.first?.body == bytes("hello") + Array(repeating: 0x61, count: 300))
    #expect(outcome.messages.first?.trailers == ["X-Done": "yes"])

    var request: [UInt8] = []
    try HTTPSerializer.write(HTTPRequestHead(method: .put, target: "/x", headers: ["Host": "h", "Content-Length": "0"]), into: &request)
    #expect(String(decoding: request, as: UTF8.self) == "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")

    head.headers.add("X-Evil", "a\r\nSet-Cookie: b")
    #expect(throws: HTTPSerializeError.self) { try HTTPSerializer.write(head, into: &out) }
    #expect(throws: HTTPSerializeError.self) {
        try HTTPSerializer.write(HTTPRequestHead(method: .get, target: "/ HTTP/1.1\r\n"), into: &out)
    }
}

@Test func responseHeadsCarryTheirLengthAndRefuseEveryBadValueByte() throws {
    for length in [0, 7, 10, 4626, 1_000_000, Int.max] {
        var out: [UInt8] = []
        try HTTPSerializer.writeResponseHead(status: 200, reason: "OK", headers: HTTPHeaders(), contentLength: length,
                                             connection: nil, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "HTTP/1.1 200 OK\r\nContent-Length: \(length)\r\n\r\n")
    }
    // Values are checked eight bytes at a time while plain: a bad byte is found wherever it sits.
    for byte in 0...255 {
        for position in [0, 7, 8, 12, 16] {
            var value = Array(repeating: UInt8(ascii: "v"), count: 17)
            value[position] = UInt8(byte)
            var headers = HTTPHeaders()
            headers.add("X-Value", String(decoding: value, as: UTF8.self))
            var out: [UInt8] = []
            let written = (try? HTTPSerializer.writeResponseHead(status: 200, reason: "OK", headers: headers, contentLength: nil,
                                                                 connection: nil, into: &out)) != nil
            #expect(written == isFieldValueByte(UInt8(byte)), "byte \(byte) at \(position)")
        }
    }
}

@Test func tokenBytesAreExactlyRFC9110Tchar() {
    let tchar = Set(Array("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8))
    for byte in 0...255 {
        #expect(isTokenByte(UInt8(byte)) == tchar.contains(UInt8(byte)), "byte \(byte)")
    }
}

@Test func headersKeepBytesAndAnswerLookupsCaseInsensitively() throws {
    let raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, ,X-Drop\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for:2.2.2.2 \r\nContent-Length: 0\r\n\r\n"
    var headers = try #require(parseAll(bytes(raw)).messages.first?.request).headers
    #expect(headers.count == 5)
    #expect(headers.count("X-FORWARDED-FOR") == 2)
    #expect(headers.values("x-forwarded-for") == ["1.1.1.1", "2.2.2.2"])
    #expect(headers.tokens("connection") == ["keep-alive", "x-drop"], "empty list elements are skipped")
    #expect(headers.containsToken("Connection", "x-DROP"))
    #expect(!headers.containsToken("connection", "x"))
    let firstValue = { (name: String) in headers.withFirstValue(of: name) { $0.map { String(decoding: $0, as: UTF8.self) } } }
    #expect(firstValue("x-FORWARDED-for") == "1.1.1.1", "only the first field counts")
    #expect(firstValue("Connection") == "Keep-Alive, ,X-Drop", "values are the bytes as sent")
    #expect(firstValue("Content-Type") == nil)
    var seen: [String] = []
    headers.forEachField { name, value in
        seen.append(String(decoding: name, as: UTF8.self) + "=" + String(decoding: value, as: UTF8.self))
    }
    #expect(seen == ["Host=a", "Connection=Keep-Alive, ,X-Drop", "X-Forwarded-For=1.1.1.1", "x-forwarded-for=2.2.2.2", "Content-Length=0"])
    #expect(Array(headers).map(\.name) == ["Host", "Connection", "X-Forwarded-For", "x-forwarded-for", "Content-Length"])

    headers.set("X-Forwarded-For", "3.3.3.3")
    #expect(headers.values("x-forwarded-for") == ["3.3.3.3"])
    headers.remove("host")
    #expect(headers["HOST"] == nil && headers.count == 3)
    #expect(headers == ["Connection": "Keep-Alive, ,X-Drop", "Content-Length": "0", "X-Forwarded-For": "3.3.3.3"])
    #expect(headers != ["connection": "Keep-Alive, ,X-Drop", "Content-Length": "0", "X-Forwarded-For": "3.3.3.3"], "equality is exact")
}

/// Field values are checked eight bytes at a time where they can be: a byte that is not plain
/// text must be found wherever it sits in a long value, and a tab or obs-text anywhere is kept.
@Test func longFieldValuesAreCheckedAtEveryPosition() throws {
    let plain = Array("0123456789abcdefghijklmnopqrstuv".utf8)
    func request(_ value: [UInt8]) -> [UInt8] {
        bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Long: ") + value + bytes("\r\nX-After: z\r\n\r\n")
    }
    for position in 1..<plain.count - 1 {
        for bad: UInt8 in [0x00, 0x0A, 0x0D, 0x1F, 0x7F] {
            var value = plain
            value[position] = bad
            let expected: HTTPParseError = bad == 0x0A ? .bareLineFeed : .invalidHeaderValue
            #expect(parseAll(request(value)).error == expected, "byte \(bad) at \(position)")
        }
        for allowed: UInt8 in [0x09, 0x20, 0x7E, 0x80, 0xFF] {
            var value = plain
            value[position] = allowed
            let head = try #require(parseAll(request(value)).messages.first?.request, "byte \(allowed) at \(position)")
            var seen: [UInt8] = []
            head.headers.forEachValue(of: "x-long") { seen = Array($0) }
            #expect(seen == value, "byte \(allowed) at \(position)")
            #expect(head.headers["x-after"] == "z")
        }
    }
}

/// The path ends at the first `?`; the query is everything after it, itself maybe empty.
@Test func targetSplitsAtTheFirstQuestionMark() {
    let cases: [(target: String, path: Substring, query: Substring?)] = [
        ("/", "/", nil), ("/inject?timeout=10s", "/inject", "timeout=10s"), ("/p?", "/p", ""),
        ("/p?a=1?b", "/p", "a=1?b"), ("?x", "", "x"), ("/a-long-path-beyond-a-small-string/x", "/a-long-path-beyond-a-small-string/x", nil),
    ]
    for (target, path, query) in cases {
        let head = HTTPRequestHead(method: .get, target: target)
        #expect(head.path == path, "\(target)")
        #expect(head.query == query, "\(target)")
    }
}
