import Glibc
import CTandemShim

/// An IPv4 or IPv6 literal, parsed with inet_pton.
struct IPAddress {
    let isIPv6: Bool
    let bytes: [UInt8]

    init?(_ text: Substring) { self.init(String(text)) }

    init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            isIPv6 = false
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            isIPv6 = true
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    var isLoopback: Bool { isIPv6 ? bytes == Array(repeating: 0, count: 15) + [1] : bytes[0] == 127 }
}

/// A failed system call, named.
public struct SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public var description: String { "\(call): \(String(cString: strerror(code))) (errno \(code))" }
}

/// The sockets the data plane needs, on Glibc directly: Net's loop keeps descriptor
/// registration internal, so the proxy runs its own loops (see `Reactor`).
enum Socket {
    static func withAddress<T>(_ address: HostPort, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        let ip = IPAddress(address.host)!
        if ip.isIPv6 {
            var storage = sockaddr_in6()
            storage.sin6_family = sa_family_t(AF_INET6)
            storage.sin6_port = UInt16(address.port).bigEndian
            withUnsafeMutableBytes(of: &storage.sin6_addr) { $0.copyBytes(from: ip.bytes) }
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var storage = sockaddr_in()
        storage.sin_family = sa_family_t(AF_INET)
        storage.sin_port = UInt16(address.port).bigEndian
        withUnsafeMutableBytes(of: &storage.sin_addr) { $0.copyBytes(from: ip.bytes) }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func family(_ address: HostPort) -> Int32 { IPAddress(address.host)!.isIPv6 ? AF_INET6 : AF_INET }

    static func check(_ result: Int32, _ call: String) throws(SocketError) -> Int32 {
        if result < 0 { throw SocketError(call: call, code: errno) }
        return result
    }

    static func stream(_ family: Int32) throws(SocketError) -> Int32 {
        try check(socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0), "socket")
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// A non-blocking listening socket; with `reusePort` each worker binds its own and the
    /// kernel spreads connections among them.
    static func listen(_ address: HostPort, reusePort: Bool) throws(SocketError) -> Int32 {
        let fd = try stream(family(address))
        setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        // Accepted sockets inherit it: no setsockopt per connection.
        setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        if reusePort { setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
        if withAddress(address, { Glibc.bind(fd, $0, $1) }) < 0 {
            let code = errno
            Glibc.close(fd)
            throw SocketError(call: "bind(\(address))", code: code)
        }
        if Glibc.listen(fd, 4096) < 0 {
            let code = errno
            Glibc.close(fd)
            throw SocketError(call: "listen(\(address))", code: code)
        }
        return fd
    }

    static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafeBytes(of: &storage) { raw in
            Int(UInt16(raw[2]) << 8 | UInt16(raw[3]))
        }
    }

    /// Accepts one connection (non-blocking, close-on-exec, TCP_NODELAY from the listener) and
    /// its peer's IP, or nil when none waits (or the one waiting gave up first). Throws when
    /// accepting itself fails: out of descriptors or memory.
    static func accept(_ fd: Int32) throws(SocketError) -> (Int32, String)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let client = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                tandem_accept4(fd, $0, &length)
            }
        }
        guard client >= 0 else {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR || code == ECONNABORTED { return nil }
            throw SocketError(call: "accept4", code: code)
        }
        return (client, peerIP(&storage))
    }

    private static func peerIP(_ storage: inout sockaddr_storage) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if Int32(storage.ss_family) == AF_INET6 {
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var ip = address.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count))
                }
            }
        } else {
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var ip = address.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &ip, &text, socklen_t(text.count))
                }
            }
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts a non-blocking connect; completion shows as writability.
    static func connect(_ address: HostPort) throws(SocketError) -> Int32 {
        let fd = try stream(family(address))
        setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        let result = withAddress(address) { Glibc.connect(fd, $0, $1) }
        if result < 0 && errno != EINPROGRESS {
            let code = errno
            Glibc.close(fd)
            throw SocketError(call: "connect(\(address))", code: code)
        }
        return fd
    }

    static func pendingError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        return code
    }

    /// Whether a non-blocking connect has ended (connected or failed) by now, whatever epoll
    /// has delivered: a loop takes 512 events per turn, so under load the event of a connect
    /// that finished in time can still be waiting when the tick checks connect deadlines.
    static func connectEnded(_ fd: Int32) -> Bool {
        var probe = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&probe, 1, 0) == 1
    }
}
