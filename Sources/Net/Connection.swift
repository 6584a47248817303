import Glibc
import CTandemShim

/// What a connection reports; every call comes on the connection's loop thread.
public protocol ConnectionDelegate: AnyObject {
    /// Connected (and, with TLS, handshake done).
    func connectionDidBecomeActive(_ connection: Connection)
    /// Bytes that arrived; they are valid only during this call.
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer sent EOF (it may still be reading).
    func connectionDidReadEOF(_ connection: Connection)
    /// `isWritable` flipped: the peer stopped or resumed draining what we write.
    func connectionWritabilityDidChange(_ connection: Connection)
    /// Closed, by either side; `error` says why when it was not a clean close.
    func connectionDidClose(_ connection: Connection, error: Error?)
    /// Memory of the delegate's own for the next read, when it already knows where those bytes
    /// belong (a request body of known length): they are reported by `connection(_:didRead:)`
    /// where they landed, not copied there from the loop's scratch buffer. It must stay valid
    /// until that call. nil (the default): read into the scratch buffer.
    func readDestination(for connection: Connection) -> UnsafeMutableRawBufferPointer?
}

extension ConnectionDelegate {
    public func readDestination(for connection: Connection) -> UnsafeMutableRawBufferPointer? { nil }
}

/// A non-blocking TCP connection, optionally TLS, owned by one event loop.
///
/// Writes never block: what the socket does not take is queued, and `isWritable` turns false
/// above `highWaterMark` so producers can stop (backpressure) until it drains below
/// `lowWaterMark`. Loop-confined: use it only on `loop` (hence `@unchecked Sendable`, so it can
/// be captured by tasks sent to that loop).
public final class Connection: EventHandler, @unchecked Sendable {
    public let loop: EventLoop
    public let peerAddress: SocketAddress?
    public var delegate: ConnectionDelegate?
    public var highWaterMark = 256 * 1024
    public var lowWaterMark = 64 * 1024
    public private(set) var isWritable = true
    /// The ALPN protocol agreed during the TLS handshake.
    public private(set) var negotiatedProtocol: String?
    public var isClosed: Bool { state == .closed }
    public var pendingWriteBytes: Int { outbound.count - outboundStart }

    let fd: Int32
    private let tls: TLSSession?
    private enum State { case idle, connecting, handshaking, active, lingering, closed }
    private var state: State = .idle
    private var outbound: [UInt8] = []
    private var outboundStart = 0
    private var readingPaused = false
    private var readEOF = false
    private var closeWhenFlushed = false
    private var lingerOnClose = true
    private var registeredEvents: UInt32 = 0
    private var handshakeWants: UInt32 = EPOLLIN.rawValue
    private var tlsReadWantsWrite = false
    private var lingerTimer: TimerID?

    private init(loop: EventLoop, fd: Int32, peer: SocketAddress?, tls: TLSSession?) {
        self.loop = loop
        self.fd = fd
        self.peerAddress = peer
        self.tls = tls
    }

    /// Wraps an accepted socket (on the loop thread); call `start` to begin.
    static func accepted(loop: EventLoop, fd: Int32, peer: SocketAddress, tls: TLSContext?) throws(TLSError) -> Connection {
        let session: TLSSession?
        do throws(TLSError) {
            session = try tls.map { context throws(TLSError) in try TLSSession(context: context, fd: fd, serverName: nil) }
        } catch {
            Sys.close(fd)
            throw error
        }
        _ = try? Sys.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY")
        return Connection(loop: loop, fd: fd, peer: peer, tls: session)
    }

    /// Starts connecting to `address` (on the loop thread). `serverName` is checked against the
    /// certificate (DNS or IP SAN) and sent as SNI when it is a name.
    public static func connect(to address: SocketAddress, on loop: EventLoop, tls: TLSContext? = nil,
                               serverName: String? = nil, delegate: ConnectionDelegate) throws -> Connection {
        let fd = try Sys.socket(address.family)
        do {
            _ = try? Sys.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY")
            let session = try tls.map { context throws(TLSError) in try TLSSession(context: context, fd: fd, serverName: serverName) }
            let connection = Connection(loop: loop, fd: fd, peer: address, tls: session)
            connection.delegate = delegate
            let connected = try Sys.connect(fd, address)
            connection.state = .connecting
            try loop.register(fd, events: EPOLLOUT.rawValue, handler: connection)
            connection.registeredEvents = EPOLLOUT.rawValue
            if connected { connection.connected() }
            return connection
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Registers an accepted connection with its loop (on the loop thread) and starts reading.
    public func start(delegate: ConnectionDelegate) throws(SystemError) {
        self.delegate = delegate
        state = tls == nil ? .active : .handshaking
        registeredEvents = EPOLLIN.rawValue
        do {
            try loop.register(fd, events: registeredEvents, handler: self)
        } catch {
            state = .closed
            Sys.close(fd)
            throw error
        }
        if tls == nil { delegate.connectionDidBecomeActive(self) }
    }

    // MARK: Events

    public func handle(events: UInt32) {
        switch state {
        case .idle, .closed:
            return
        case .connecting:
            let code = Sys.socketError(fd)
            if code != 0 { return fail(SystemError("connect(\(peerAddress.map { "\($0)" } ?? "?"))", code: code)) }
            if events & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { connected() }
        case .handshaking:
            advanceHandshake()
        case .active, .lingering:
            if events & EPOLLERR.rawValue != 0 && events & EPOLLIN.rawValue == 0 {
                return fail(SystemError("socket", code: Sys.socketError(fd)))
            }
            if events & EPOLLOUT.rawValue != 0 || tlsReadWantsWrite { flush() }
            guard state != .closed else { return }
            if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                if readingPaused || readEOF {
                    if events & EPOLLHUP.rawValue != 0 { close() }
                } else {
                    readAvailable()
                }
            }
        }
    }

    private func connected() {
        if tls != nil {
            state = .handshaking
            advanceHandshake()
        } else {
            becomeActive()
        }
    }

    private func advanceHandshake() {
        guard let tls else { return }
        do {
            switch try tls.handshake() {
            case .done:
                negotiatedProtocol = tls.negotiatedProtocol
                becomeActive()
                if state == .active { readAvailable() }
            case .wantRead:
                handshakeWants = EPOLLIN.rawValue
                updateInterest()
            case .wantWrite:
                handshakeWants = EPOLLOUT.rawValue
                updateInterest()
            }
        } catch {
            fail(error)
        }
    }

    private func becomeActive() {
        state = .active
        delegate?.connectionDidBecomeActive(self)
        if state == .active { flush() }
    }

    private func readAvailable() {
        var rounds = 0
        while (state == .active || state == .lingering) && !readingPaused && !readEOF && rounds < 16 {
            rounds += 1
            let destination = state == .active ? delegate?.readDestination(for: self) ?? loop.scratch : loop.scratch
            let result: IOResult
            do {
                if let tls {
                    let (outcome, wantsWrite) = try tls.read(into: destination)
                    result = outcome
                    tlsReadWantsWrite = wantsWrite
                } else {
                    result = try Sys.receive(fd, into: destination)
                }
            } catch {
                return fail(error)
            }
            switch result {
            case .wouldBlock:
                return updateInterest()
            case .done(0):
                readEOF = true
                if state == .lingering { return close() }
                updateInterest()
                delegate?.connectionDidReadEOF(self)
                return
            case .done(let count):
                if state == .lingering { continue }
                delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: destination[0..<count]))
                if tls == nil && count < destination.count { return }
                // OpenSSL reads ahead whatever the socket holds, up to its buffer: holding nothing
                // now, it found the socket drained, and epoll reports what comes next. Reading on
                // would make a read call that finds nothing for most requests.
                if let tls, !tls.hasBufferedInput { return updateInterest() }
            }
        }
        // The rounds are up, so the loop's other connections get their turn. What OpenSSL has
        // read ahead would never wake epoll: its turn is queued instead.
        if state == .active && !readingPaused && !readEOF && tls?.hasBufferedInput == true { readBufferedInputLater() }
    }

    /// Reads, in a later turn of the loop, what OpenSSL already holds, where epoll cannot see it.
    private func readBufferedInputLater() {
        loop.execute { [self] in if state == .active && !readingPaused { readAvailable() } }
    }

    // MARK: Writing

    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Sends what the socket takes now and queues the rest.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state != .closed && state != .lingering && !closeWhenFlushed, !bytes.isEmpty else { return }
        var written = 0
        if state == .active && pendingWriteBytes == 0 {
            guard let count = writeSome(bytes) else { return }
            written = count
        }
        if written < bytes.count {
            outbound.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[written...]))
            updateWritability()
            updateInterest()
        }
    }

    /// Writes until the socket would block; nil if the connection failed.
    private func writeSome(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var written = 0
        while written < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
            do {
                let result: IOResult
                if let tls { result = try tls.write(rest).0 } else { result = try Sys.write(fd, rest) }
                guard case .done(let count) = result, count > 0 else { break }
                written += count
            } catch {
                fail(error)
                return nil
            }
        }
        return written
    }

    private func flush() {
        guard state == .active else { return }
        if pendingWriteBytes > 0 {
            let written = outbound.withUnsafeBytes { raw in
                writeSome(UnsafeRawBufferPointer(rebasing: raw[outboundStart...]))
            }
            guard let written else { return }
            outboundStart += written
            if outboundStart == outbound.count {
                outbound.removeAll(keepingCapacity: outbound.capacity <= 1 << 20)
                outboundStart = 0
            } else if outboundStart > outbound.count / 2 && outboundStart > 64 * 1024 {
                outbound.removeFirst(outboundStart)
                outboundStart = 0
            }
            updateWritability()
        }
        if pendingWriteBytes == 0 && closeWhenFlushed { return linger() }
        if state == .active { updateInterest() }
    }

    private func updateWritability() {
        let pending = pendingWriteBytes
        if isWritable && pending > highWaterMark {
            isWritable = false
            delegate?.connectionWritabilityDidChange(self)
        } else if !isWritable && pending <= lowWaterMark {
            isWritable = true
            delegate?.connectionWritabilityDidChange(self)
        }
    }

    // MARK: Flow control and closing

    /// Stops reading from the peer (backpressure) until `resumeReading`.
    public func pauseReading() {
        readingPaused = true
        updateInterest()
    }

    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
        // Bytes may already sit inside OpenSSL, where epoll cannot see them. Read them from the
        // loop, not here: the caller may be in the middle of using `scratch`.
        if tls != nil && state == .active { readBufferedInputLater() }
    }

    /// Closes once everything queued has been sent. With `lingering`, it half-closes and waits
    /// briefly for the peer's EOF first, so request bytes we never read (a rejected request)
    /// do not turn our last response into a reset; without, it closes at once, which is right
    /// when everything the peer sent was consumed.
    public func closeAfterFlush(lingering: Bool = true) {
        guard state != .closed else { return }
        closeWhenFlushed = true
        lingerOnClose = lingering
        if state != .active { return close() }
        if pendingWriteBytes == 0 { linger() }
    }

    private func linger() {
        guard state == .active else { return }
        tls?.shutdown()
        guard lingerOnClose else { return close() }
        Sys.shutdownWrite(fd)
        state = .lingering
        readingPaused = false
        if readEOF { return close() }
        updateInterest()
        lingerTimer = loop.schedule(after: .seconds(2)) { [weak self] in self?.close() }
    }

    /// Closes now, dropping anything queued.
    public func close() {
        closeNow(error: nil)
    }

    private func fail(_ error: Error) {
        closeNow(error: error)
    }

    private func closeNow(error: Error?) {
        guard state != .closed else { return }
        let wasOpen = state != .idle
        state = .closed
        if let lingerTimer { loop.cancel(lingerTimer) }
        if wasOpen { loop.deregister(fd) }
        Sys.close(fd)
        outbound = []
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionDidClose(self, error: error)
    }

    private func updateInterest() {
        var events: UInt32 = 0
        switch state {
        case .idle, .closed: return
        case .connecting: events = EPOLLOUT.rawValue
        case .handshaking: events = handshakeWants
        case .active, .lingering:
            if !readingPaused && !readEOF { events |= EPOLLIN.rawValue }
            if pendingWriteBytes > 0 || tlsReadWantsWrite { events |= EPOLLOUT.rawValue }
        }
        guard events != registeredEvents else { return }
        registeredEvents = events
        do { try loop.modify(fd, events: events) } catch { fail(error) }
    }
}

/// A listening socket on one loop. Several loops can listen on one port with `SO_REUSEPORT`,
/// and the kernel spreads new connections across them by a hash; or one listener hands each
/// socket to whichever loop should have it (`HTTPServer` does).
public final class TCPListener: EventHandler, @unchecked Sendable {
    public let localAddress: SocketAddress
    let fd: Int32
    private var loop: EventLoop?
    private var onSocket: ((Int32, SocketAddress) -> Void)?
    private var pausedUntilRetry = false
    private var closed = false

    /// Connections the kernel completes before they are accepted (capped by net.core.somaxconn,
    /// 4,096 by default). Bursts are real: every proxy reconnects to a restarted bridge at once,
    /// and a full queue drops SYNs, which cost a second each (the first retransmission).
    static let backlog: Int32 = 4096

    /// Binds and listens (on any thread); `start` then registers it with a loop.
    public init(address: SocketAddress, reusePort: Bool) throws(SystemError) {
        fd = try Sys.socket(address.family)
        do {
            try Sys.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
            if reusePort { try Sys.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT") }
            try Sys.bind(fd, address)
            try Sys.listen(fd, backlog: Self.backlog)
            localAddress = try Sys.localAddress(fd)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Starts accepting on `loop` (call on that loop's thread). Each new socket is handed over
    /// with its peer; the receiver owns it (see `Connection.accepted`).
    public func start(on loop: EventLoop, onSocket: @escaping (Int32, SocketAddress) -> Void) throws(SystemError) {
        self.loop = loop
        self.onSocket = onSocket
        try loop.register(fd, events: EPOLLIN.rawValue, handler: self)
    }

    /// Starts accepting on `loop`; each new connection (with a TLS session when `tls` is set)
    /// is handed over unstarted, on this loop: call `start(delegate:)` or `close()`.
    public func start(on loop: EventLoop, tls: TLSContext? = nil, onAccept: @escaping (Connection) -> Void) throws(SystemError) {
        try start(on: loop) { fd, peer in
            // A failed TLS setup affects only that client.
            guard let connection = try? Connection.accepted(loop: loop, fd: fd, peer: peer, tls: tls) else { return }
            onAccept(connection)
        }
    }

    public func handle(events: UInt32) {
        for _ in 0..<64 {
            do {
                guard let (client, peer) = try Sys.accept(fd), let onSocket else { return }
                onSocket(client, peer)
            } catch {
                // Out of descriptors (EMFILE/ENFILE) and the like: level-triggered epoll would
                // spin, so stop listening for a moment and let connections finish.
                guard let loop, !pausedUntilRetry else { return }
                pausedUntilRetry = true
                try? loop.modify(fd, events: 0)
                loop.schedule(after: .milliseconds(100)) { [weak self] in
                    guard let self, let loop = self.loop else { return }
                    self.pausedUntilRetry = false
                    try? loop.modify(self.fd, events: EPOLLIN.rawValue)
                }
                return
            }
        }
    }

    /// Stops accepting and closes the socket (on the loop thread, or before `start`).
    public func close() {
        guard !closed else { return }
        closed = true
        loop?.deregister(fd)
        loop = nil
        onSocket = nil
        Sys.close(fd)
    }
}
