import Glibc

/// An incremental, strict HTTP/1.1 parser (RFC 9112) for requests and responses.
///
/// Pure: it owns no buffer and does no I/O. The caller hands it the bytes it holds, the parser
/// consumes some and reports at most one event per call; unconsumed bytes must be handed in
/// again, followed by whatever arrived since. Body events are ranges into the caller's bytes, so
/// bodies are never copied here. Ambiguous framing (the stuff of request smuggling) is an error,
/// never a guess.
public struct HTTPParser: Sendable {
    public enum Kind: Sendable { case request, response }

    public enum Event: Equatable, Sendable {
        case requestHead(HTTPRequestHead)
        /// Informational (1xx, except 101) heads are followed by the final head, not by `.end`.
        case responseHead(HTTPResponseHead)
        /// Body bytes: a range into the buffer passed to this `parse` call.
        case body(Range<Int>)
        case end(trailers: HTTPHeaders)
    }

    public let kind: Kind
    public let limits: HTTPLimits
    /// Set before parsing the response to a HEAD request: it has headers but no body.
    public var respondingToHEAD = false

    private enum State: Sendable {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case endPending
        case failed(HTTPParseError)
    }

    private var state: State = .head
    /// Progress through a head (or trailer block) that has not fully arrived yet.
    private var scan = HeadScan()
    private var bodyBytes = 0
    private var unconsumedAtLastCall = 0
    /// The last request's target, handed out again when the next request names the same one:
    /// a client mostly does (the API server posts to one path), and a target of 16 bytes or
    /// more made anew cost an allocation, a copy and a free per request (about 400 instructions).
    private var lastTarget = ""

    public init(_ kind: Kind, limits: HTTPLimits = HTTPLimits()) {
        self.kind = kind
        self.limits = limits
    }

    /// True between messages: nothing of a next message has been seen.
    public var isIdle: Bool {
        if case .head = state { return unconsumedAtLastCall == 0 }
        return false
    }

    /// How many bytes of a body with a Content-Length are still to come: after its head, the
    /// whole length, so a caller can size its buffer once.
    public var fixedBodyBytesRemaining: Int? {
        if case .fixedBody(let remaining) = state { remaining } else { nil }
    }

    /// Consumes a prefix of `input`. A `nil` event means: hand in more bytes (after the
    /// unconsumed ones). Once an error is thrown, every later call throws it again.
    public mutating func parse(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) -> (consumed: Int, event: Event?) {
        var consumed = 0
        let event = try parse(input, consumed: &consumed)
        return (consumed, event)
    }

    /// `parse` with the consumed count given back through `consumed`: the server's shape. A
    /// tuple holding an event is copied and destroyed through its type metadata, about 170
    /// instructions each time, at every call.
    mutating func parse(_ input: UnsafeRawBufferPointer, consumed: inout Int) throws(HTTPParseError) -> Event? {
        consumed = 0
        do {
            let event = try step(input, offset: &consumed)
            unconsumedAtLastCall = input.count - consumed
            return event
        } catch {
            state = .failed(error)
            throw error
        }
    }

    /// Convenience over `parse(_:)` for byte arrays.
    public mutating func parse(_ input: [UInt8]) throws(HTTPParseError) -> (consumed: Int, event: Event?) {
        var result: Result<(consumed: Int, event: Event?), HTTPParseError> = .success((0, nil))
        input.withUnsafeBytes { raw in
            do throws(HTTPParseError) { result = .success(try parse(raw)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    /// Tells the parser the peer closed the connection: ends a read-until-close body, and is an
    /// error in the middle of any other message.
    public mutating func finish() throws(HTTPParseError) -> Event? {
        switch state {
        case .untilClose, .endPending:
            reset()
            return .end(trailers: HTTPHeaders())
        case .head where unconsumedAtLastCall == 0:
            return nil
        case .failed(let error):
            throw error
        default:
            state = .failed(.truncatedMessage)
            throw .truncatedMessage
        }
    }

    private mutating func reset() {
        state = .head
        scan = HeadScan()
        bodyBytes = 0
    }

    /// Parses from `offset`, which it leaves just past what it consumed.
    private mutating func step(_ input: UnsafeRawBufferPointer, offset: inout Int) throws(HTTPParseError) -> Event? {
        while true {
            switch state {
            case .failed(let error):
                throw error

            case .head:
                if scan.scanned == 0 && kind == .request {
                    // RFC 9112 §2.2: ignore empty lines before a request line.
                    while offset + 1 < input.count && input[offset] == cr && input[offset + 1] == lf { offset += 2 }
                    if offset < input.count && input[offset] == lf { throw .bareLineFeed }
                    if offset + 1 == input.count && input[offset] == cr { return nil }
                }
                guard let headEnd = try scanHead(input, from: offset, startLine: true) else { return nil }
                let event = try parseHead(input, from: offset, to: headEnd)
                offset = headEnd
                return event

            case .fixedBody(let remaining):
                if remaining == 0 { state = .endPending; continue }
                guard offset < input.count else { return nil }
                let take = min(remaining, input.count - offset)
                state = take == remaining ? .endPending : .fixedBody(remaining: remaining - take)
                offset += take
                return .body(offset - take..<offset)

            case .chunkSize:
                guard let size = try parseChunkLine(input, from: &offset) else { return nil }
                if size == 0 {
                    state = .trailers
                } else {
                    bodyBytes += size
                    if bodyBytes > limits.maxBodyBytes { throw .bodyTooLarge }
                    state = .chunkData(remaining: size)
                }

            case .chunkData(let remaining):
                guard offset < input.count else { return nil }
                let take = min(remaining, input.count - offset)
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
                offset += take
                return .body(offset - take..<offset)

            case .chunkDataEnd:
                guard input.count - offset >= 2 else {
                    if offset < input.count && input[offset] != cr { throw .invalidChunk }
                    return nil
                }
                guard input[offset] == cr && input[offset + 1] == lf else { throw .invalidChunk }
                offset += 2
                state = .chunkSize

            case .trailers:
                guard let end = try scanHead(input, from: offset, startLine: false) else { return nil }
                let trailers = try parseFields(input, from: offset, to: end - 2, lines: scan.lines)
                reset()
                offset = end
                return .end(trailers: trailers)

            case .untilClose:
                guard offset < input.count else { return nil }
                defer { offset = input.count }
                return .body(offset..<input.count)

            case .endPending:
                reset()
                return .end(trailers: HTTPHeaders())
            }
        }
    }

    // MARK: Heads

    private struct HeadScan: Sendable {
        /// Bytes of the head already checked, relative to its start.
        var scanned = 0
        var lineStart = 0
        /// End (index of CR) of the first line, relative to the head's start.
        var firstLineEnd: Int? = nil
        /// Complete lines so far, the start line included: how many fields to make room for.
        var lines = 0
    }

    /// Finds the end of a head or trailer block (index just past the empty line), or nil if it
    /// has not all arrived. Enforces CRLF line endings and the size limits on the way.
    private mutating func scanHead(_ input: UnsafeRawBufferPointer, from base: Int, startLine: Bool) throws(HTTPParseError) -> Int? {
        var index = base + scan.scanned
        while index < input.count {
            // memchr jumps to the next line feed; the bytes before it only count toward the limits.
            let lineFeed = input.baseAddress.flatMap { start in
                memchr(start + index, Int32(lf), input.count - index).map { start.distance(to: $0) }
            } ?? input.count
            if lineFeed > index { try checkHeadLimits(length: lineFeed - base, startLine: startLine) }
            index = lineFeed
            guard index < input.count else { break }
            let lineStart = base + scan.lineStart
            if index == lineStart || input[index - 1] != cr { throw .bareLineFeed }
            if index - 1 == lineStart {
                if startLine && scan.firstLineEnd == nil {
                    throw kind == .request ? .invalidRequestLine : .invalidStatusLine
                }
                return index + 1
            }
            if scan.firstLineEnd == nil && startLine { scan.firstLineEnd = index - 1 - base }
            scan.lineStart = index + 1 - base
            scan.lines += 1
            index += 1
            try checkHeadLimits(length: index - base, startLine: startLine)
        }
        scan.scanned = index - base
        return nil
    }

    /// Throws if a head of `length` bytes so far breaks a limit: the start line's while it is
    /// still open, else the whole head's. Checked per run of bytes, it reports what a check at
    /// every byte would have reported first.
    private func checkHeadLimits(length: Int, startLine: Bool) throws(HTTPParseError) {
        let startLineOpen = startLine && scan.firstLineEnd == nil
        guard length > limits.maxHeaderBytes || (startLineOpen && length > limits.maxStartLine) else { return }
        if startLineOpen && limits.maxStartLine <= limits.maxHeaderBytes {
            throw kind == .request ? .requestLineTooLong : .headersTooLarge
        }
        throw .headersTooLarge
    }

    private mutating func parseHead(_ input: UnsafeRawBufferPointer, from base: Int, to end: Int) throws(HTTPParseError) -> Event {
        let lineEnd = base + scan.firstLineEnd!
        let headers = try parseFields(input, from: lineEnd + 2, to: end - 2, lines: scan.lines - 1)
        scan = HeadScan()
        switch kind {
        case .request:
            let head = try parseRequestLine(input, from: base, to: lineEnd, headers: headers)
            try frameRequest(head)
            return .requestHead(head)
        case .response:
            let head = try parseStatusLine(input, from: base, to: lineEnd, headers: headers)
            try frameResponse(head)
            return .responseHead(head)
        }
    }

    /// Parses the `name: value` lines in [start, end) (every one ends in CRLF, and there are at
    /// most `lines`) into headers over one copy of those bytes.
    private func parseFields(_ input: UnsafeRawBufferPointer, from start: Int, to end: Int, lines: Int) throws(HTTPParseError) -> HTTPHeaders {
        var headers = HTTPHeaders(block: UnsafeRawBufferPointer(rebasing: input[start..<end]), lines: min(lines, limits.maxHeaderCount))
        // Each line is walked once: the name up to its colon, then the value, checked on the way
        // to the line's CRLF. Every line ends in CRLF, so neither walk can run past the block.
        var lineStart = start
        while lineStart < end {
            let first = input[lineStart]
            if first == sp || first == htab { throw .obsoleteLineFolding }
            var colon = lineStart
            while input[colon] != colonByte {
                guard isTokenByte(input[colon]) else { throw .invalidHeaderName }
                colon += 1
            }
            if colon == lineStart { throw .invalidHeaderName }
            var lineEnd = colon + 1
            // Eight bytes at a time, straight to the first one that is not plain text (the line's
            // CR at the latest): values are most of a head, and checked a byte at a time they made
            // this the parser's costliest loop.
            while true {
                if lineEnd + 8 <= input.count {
                    let plain = plainFieldTextCount(input.loadUnaligned(fromByteOffset: lineEnd, as: UInt64.self))
                    lineEnd += plain
                    if plain == 8 { continue }
                }
                let byte = input[lineEnd]
                if byte >= 0x20 && byte != 0x7F || byte == htab {
                    lineEnd += 1
                    continue
                }
                // A CR is only allowed as the end of the line.
                guard byte == cr && input[lineEnd + 1] == lf else { throw .invalidHeaderValue }
                break
            }
            var valueStart = colon + 1
            var valueEnd = lineEnd
            while valueStart < valueEnd && (input[valueStart] == sp || input[valueStart] == htab) { valueStart += 1 }
            while valueEnd > valueStart && (input[valueEnd - 1] == sp || input[valueEnd - 1] == htab) { valueEnd -= 1 }
            if headers.count >= limits.maxHeaderCount { throw .headersTooLarge }
            headers.appendParsed(name: (lineStart - start)..<(colon - start), value: (valueStart - start)..<(valueEnd - start))
            lineStart = lineEnd + 2
        }
        return headers
    }

    private mutating func parseRequestLine(_ input: UnsafeRawBufferPointer, from start: Int, to end: Int, headers: HTTPHeaders) throws(HTTPParseError) -> HTTPRequestHead {
        var index = start
        while index < end && input[index] != sp {
            guard isTokenByte(input[index]) else { throw .invalidRequestLine }
            index += 1
        }
        let methodEnd = index
        guard methodEnd > start, methodEnd < end else { throw .invalidRequestLine }
        index += 1
        let targetStart = index
        while index < end && input[index] != sp {
            let byte = input[index]
            guard byte > 0x20 && byte < 0x7F else { throw .invalidRequestLine }
            index += 1
        }
        let targetEnd = index
        guard targetEnd > targetStart, end - targetEnd == 9 else { throw .invalidRequestLine }
        let version = try parseVersion(input, at: targetEnd + 1)
        return HTTPRequestHead(method: HTTPMethod(text(input, start, methodEnd)),
                               target: target(input, targetStart, targetEnd),
                               version: version, headers: headers)
    }

    /// The target between `start` and `end` as a String: the last target when it is the same.
    private mutating func target(_ input: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
        let same = lastTarget.withUTF8 { last in
            last.count == end - start && memcmp(last.baseAddress!, input.baseAddress! + start, end - start) == 0
        }
        if !same { lastTarget = text(input, start, end) }
        return lastTarget
    }

    private func parseStatusLine(_ input: UnsafeRawBufferPointer, from start: Int, to end: Int, headers: HTTPHeaders) throws(HTTPParseError) -> HTTPResponseHead {
        guard end - start >= 12, input[start + 8] == sp else { throw .invalidStatusLine }
        let version = try parseVersion(input, at: start)
        var status = 0
        for i in start + 9..<start + 12 {
            let byte = input[i]
            guard byte >= 0x30 && byte <= 0x39 else { throw .invalidStatusLine }
            status = status * 10 + Int(byte - 0x30)
        }
        guard status >= 100 else { throw .invalidStatusLine }
        var reason = ""
        if end - start > 12 {
            guard input[start + 12] == sp else { throw .invalidStatusLine }
            for i in start + 13..<end {
                let byte = input[i]
                if byte < 0x20 && byte != htab || byte == 0x7F { throw .invalidStatusLine }
            }
            reason = text(input, start + 13, end)
        }
        return HTTPResponseHead(status: status, reason: reason, version: version, headers: headers)
    }

    private func parseVersion(_ input: UnsafeRawBufferPointer, at index: Int) throws(HTTPParseError) -> HTTPVersion {
        let prefix: [UInt8] = [0x48, 0x54, 0x54, 0x50, 0x2F]  // "HTTP/"
        for i in 0..<5 where input[index + i] != prefix[i] {
            throw kind == .request ? .invalidRequestLine : .invalidStatusLine
        }
        let major = input[index + 5], dot = input[index + 6], minor = input[index + 7]
        guard isDigit(major), dot == 0x2E, isDigit(minor) else {
            throw kind == .request ? .invalidRequestLine : .invalidStatusLine
        }
        guard major == 0x31, minor == 0x30 || minor == 0x31 else { throw .unsupportedVersion }
        return minor == 0x31 ? .http1_1 : .http1_0
    }

    // MARK: Framing (RFC 9112 §6)

    private mutating func frameRequest(_ head: HTTPRequestHead) throws(HTTPParseError) {
        let framing = FramingFields(head.headers)
        if head.version == .http1_1 {
            if framing.hosts == 0 { throw .missingHost }
            if framing.hosts > 1 { throw .duplicateHost }
        }
        let length = try framing.contentLength.get()
        if framing.hasTransferEncoding {
            if head.version == .http1_0 { throw .transferEncodingInHTTP10 }
            if length != nil { throw .contentLengthWithTransferEncoding }
            let codings = head.headers.tokens("transfer-encoding")
            guard codings.last == "chunked" else { throw .transferEncodingNotChunked }
            guard codings.count == 1 else { throw .unsupportedTransferEncoding }
            state = .chunkSize
        } else if let length {
            if length > limits.maxBodyBytes { throw .bodyTooLarge }
            state = .fixedBody(remaining: length)
        } else {
            state = .endPending
        }
    }

    private mutating func frameResponse(_ head: HTTPResponseHead) throws(HTTPParseError) {
        let framing = FramingFields(head.headers)
        let length = try framing.contentLength.get()
        let chunked = framing.hasTransferEncoding
        if chunked && length != nil { throw .contentLengthWithTransferEncoding }
        if chunked && head.version == .http1_0 { throw .transferEncodingInHTTP10 }
        if head.status < 200 && head.status != 101 {
            scan = HeadScan()
            return
        }
        if respondingToHEAD || head.status == 101 || head.status == 204 || head.status == 304 {
            state = .endPending
        } else if chunked {
            state = head.headers.tokens("transfer-encoding").last == "chunked" ? .chunkSize : .untilClose
        } else if let length {
            if length > limits.maxBodyBytes { throw .bodyTooLarge }
            state = .fixedBody(remaining: length)
        } else {
            state = .untilClose
        }
    }

    /// What frames a message, found in one walk over its fields rather than one per name.
    private struct FramingFields {
        var hosts = 0
        var hasTransferEncoding = false
        /// The Content-Length, if any; repeated (or listed) values must all be the same number.
        var contentLength: Result<Int?, HTTPParseError> = .success(nil)

        init(_ headers: HTTPHeaders) {
            headers.forEachField { name, value in
                switch name.count {
                case 4 where asciiEqualFold(name, "host"): hosts += 1
                case 14 where asciiEqualFold(name, "content-length"): addContentLength(value)
                case 17 where asciiEqualFold(name, "transfer-encoding"): hasTransferEncoding = true
                default: break
                }
            }
        }

        private mutating func addContentLength(_ value: UnsafeRawBufferPointer) {
            forEachListElement(value) { digits in
                guard case .success(let length) = contentLength else { return }
                guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy(isDigit) else { return contentLength = .failure(.invalidContentLength) }
                var number = 0
                for digit in digits { number = number * 10 + Int(digit - 0x30) }
                if let length, length != number { return contentLength = .failure(.conflictingContentLength) }
                contentLength = .success(number)
            }
        }
    }

    // MARK: Chunks

    /// Parses `size[;ext]CRLF`; nil if the line has not all arrived.
    private func parseChunkLine(_ input: UnsafeRawBufferPointer, from offset: inout Int) throws(HTTPParseError) -> Int? {
        var index = offset
        var size = 0
        var digits = 0
        while index < input.count, let value = hexValue(input[index]) {
            digits += 1
            if digits > 15 { throw .invalidChunk }
            size = size << 4 | value
            index += 1
        }
        if index < input.count && digits == 0 { throw .invalidChunk }
        var inExtension = false
        while index < input.count {
            let byte = input[index]
            if byte == cr {
                guard index + 1 < input.count else { return nil }
                guard input[index + 1] == lf else { throw .invalidChunk }
                offset = index + 2
                return size
            }
            if byte == semicolon {
                inExtension = true
            } else if byte == sp || byte == htab {
                // bad whitespace before an extension
            } else if !inExtension || byte < 0x20 || byte == 0x7F {
                throw .invalidChunk
            }
            index += 1
            if index - offset > limits.maxChunkLine { throw .invalidChunk }
        }
        if index - offset > limits.maxChunkLine { throw .invalidChunk }
        return nil
    }
}

/// Size limits; exceeding one is an error with its own status (414, 431, 413).
public struct HTTPLimits: Sendable {
    public var maxStartLine: Int
    /// The whole head: start line and header fields (and, separately, a trailer block).
    public var maxHeaderBytes: Int
    public var maxHeaderCount: Int
    public var maxBodyBytes: Int
    public var maxChunkLine: Int

    public init(maxStartLine: Int = 8 * 1024, maxHeaderBytes: Int = 32 * 1024, maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 8 * 1024 * 1024, maxChunkLine: Int = 1024) {
        self.maxStartLine = maxStartLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLine = maxChunkLine
    }
}

/// Why a message was rejected; `status` is the response a server should send before closing.
public enum HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidRequestLine
    case invalidStatusLine
    case unsupportedVersion
    case requestLineTooLong
    case headersTooLarge
    case bareLineFeed
    case obsoleteLineFolding
    case invalidHeaderName
    case invalidHeaderValue
    case missingHost
    case duplicateHost
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case transferEncodingInHTTP10
    case transferEncodingNotChunked
    case unsupportedTransferEncoding
    case invalidChunk
    case bodyTooLarge
    case truncatedMessage

    public var status: Int {
        switch self {
        case .requestLineTooLong: 414
        case .headersTooLarge: 431
        case .bodyTooLarge: 413
        case .unsupportedVersion: 505
        case .unsupportedTransferEncoding: 501
        default: 400
        }
    }

    public var description: String {
        switch self {
        case .invalidRequestLine: "invalid request line"
        case .invalidStatusLine: "invalid status line"
        case .unsupportedVersion: "unsupported HTTP version"
        case .requestLineTooLong: "request line too long"
        case .headersTooLarge: "header section too large"
        case .bareLineFeed: "line ending is not CRLF"
        case .obsoleteLineFolding: "obsolete line folding"
        case .invalidHeaderName: "invalid header field name"
        case .invalidHeaderValue: "invalid header field value"
        case .missingHost: "missing Host header"
        case .duplicateHost: "more than one Host header"
        case .invalidContentLength: "invalid Content-Length"
        case .conflictingContentLength: "conflicting Content-Length values"
        case .contentLengthWithTransferEncoding: "both Content-Length and Transfer-Encoding"
        case .transferEncodingInHTTP10: "Transfer-Encoding in an HTTP/1.0 message"
        case .transferEncodingNotChunked: "Transfer-Encoding does not end in chunked"
        case .unsupportedTransferEncoding: "unsupported transfer coding"
        case .invalidChunk: "invalid chunked encoding"
        case .bodyTooLarge: "body too large"
        case .truncatedMessage: "connection closed in the middle of a message"
        }
    }
}

// MARK: - Byte classes

let cr: UInt8 = 0x0D
let lf: UInt8 = 0x0A
let sp: UInt8 = 0x20
let htab: UInt8 = 0x09
let colonByte: UInt8 = 0x3A
let semicolon: UInt8 = 0x3B

@inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

@inline(__always) func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case 0x30...0x39: Int(byte - 0x30)
    case 0x41...0x46: Int(byte - 0x41 + 10)
    case 0x61...0x66: Int(byte - 0x61 + 10)
    default: nil
    }
}

/// How many of eight bytes (loaded little-endian), from the first, are allowed in a field value
/// without a closer look: none below 0x20 (controls, CR, also the allowed tab) and none 0x7F.
/// The byte it stops at is checked on its own.
@inline(__always) func plainFieldTextCount(_ word: UInt64) -> Int {
    let ones: UInt64 = 0x0101_0101_0101_0101, highBits: UInt64 = 0x8080_8080_8080_8080
    // A high bit survives where a byte was below 0x20 (or was 0x7F, after the XOR) and not itself
    // >= 0x80. Borrows can mark bytes after the first such byte too, never one before it.
    let belowSpace = (word &- 0x20 &* ones) & ~word & highBits
    let delete = word ^ (0x7F &* ones)
    let isDelete = (delete &- ones) & ~delete & highBits
    return (belowSpace | isDelete).trailingZeroBitCount >> 3
}

/// RFC 9110 tchar: the bytes allowed in methods and header names. One bit per byte in two
/// constant words (0x00-0x3F, 0x40-0x7F): a switch compiled to a chain of range checks, and a
/// global table would cost a once-check on every byte.
@inline(__always) func isTokenByte(_ byte: UInt8) -> Bool {
    let low: UInt64 = 0x03FF_6CFA_0000_0000   // !#$%&'*+-. and digits
    let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // letters and ^_`|~
    return byte < 0x80 && ((byte < 0x40 ? low : high) >> (byte & 0x3F)) & 1 == 1
}

@inline(__always) private func text(_ input: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: input[start..<end]), as: UTF8.self)
}
