import Glibc
import Net

/// A blocking loopback client for speaking HTTP byte by byte to the servers under test.
/// Used by one thread at a time; it may be handed to a Dispatch thread (`offThePool`).
public final class RawClient: @unchecked Sendable {
    /// A response read back whole.
    public struct Response: Sendable {
        public var head: HTTPResponseHead
        public var body: [UInt8]
        public var trailers: HTTPHeaders
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public let fd: Int32

    public init(port: Int, receiveTimeout: Duration = .seconds(5)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // No close here: `fd` is set, so deinit runs when this throws and closes it. Closing it
        // twice would close whatever another thread opened under that number in between.
        guard result == 0 else { throw SystemError("connect", code: errno) }
        var timeout = timeval(tv_sec: Int(receiveTimeout.components.seconds),
                              tv_usec: Int(receiveTimeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until `done` says the bytes so far are enough, EOF, or the receive timeout; a reset
    /// counts as closed.
    public func read(until done: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], eof: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !done(received) {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count == 0 { return (received, true) }
            if count < 0 { return (received, errno == ECONNRESET) }
            received += buffer[0..<count]
        }
        return (received, false)
    }

    /// Everything until EOF or the receive timeout.
    public func readAll() -> [UInt8] { read().bytes }

    /// Reads `count` whole responses, parsing as bytes arrive.
    public func responses(_ count: Int, head: Bool = false) -> [Response] {
        var parser = HTTPParser(.response, limits: HTTPLimits(maxBodyBytes: .max))
        parser.respondingToHEAD = head
        var responses: [Response] = []
        var current: HTTPResponseHead?
        var body: [UInt8] = []
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while responses.count < count {
            let received = Glibc.read(fd, &buffer, buffer.count)
            if received <= 0 { break }
            pending += buffer[0..<received]
            do {
                while true {
                    let (consumed, event) = try parser.parse(pending)
                    switch event {
                    case .responseHead(let head): current = head
                    case .body(let range): body += pending[range]
                    case .end(let trailers):
                        if let head = current { responses.append(Response(head: head, body: body, trailers: trailers)) }
                        current = nil
                        body = []
                    default: break
                    }
                    pending.removeFirst(consumed)
                    if event == nil { break }
                }
            } catch {
                break
            }
        }
        return responses
    }

    /// One GET and its response.
    public func get(_ path: String, host: String = "test", headers: String = "") -> Response? {
        send("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\(headers)\r\n")
        return responses(1).first
    }
}

/// A loopback port nothing listens on now, for a server in another process that must be told its
/// port up front. It is taken from below the ephemeral range, so no client connection (of any
/// process on the machine) is given it before the server binds it; a port bound to 0 and closed
/// went back to that pool, and a busy machine handed it out again within moments.
public func unusedPort() -> Int {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
        .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
    let ephemeralStart = range?.first ?? 32_768
    if ephemeralStart > 11_000 {
        for _ in 0..<100 {
            let candidate = Int.random(in: 10_000..<ephemeralStart)
            if let socket = RefusingPort(port: candidate) {
                socket.close()
                return candidate
            }
        }
    }
    let socket = RefusingPort()
    defer { socket.close() }
    return socket.port
}

/// A loopback port that refuses connections for as long as this is open: bound, never listening,
/// so no other socket can take the port the way one can take a port that was merely closed.
public final class RefusingPort: @unchecked Sendable {
    private var fd: Int32
    public let port: Int

    /// A port the kernel chooses.
    public convenience init() { self.init(port: 0)! }

    /// This port, or nil when it is taken.
    public init?(port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(fd)
            return nil
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    public var address: String { "127.0.0.1:\(port)" }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}
