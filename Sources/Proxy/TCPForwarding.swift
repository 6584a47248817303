import Glibc
import CTandemShim

/// `splice(2)` is `_GNU_SOURCE`-only, so Swift's Glibc module does not export it; it is looked
/// up once by name instead of adding to the shared C shim.
private typealias SpliceFunction = @convention(c) (Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32) -> Int
private let spliceCall: SpliceFunction = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "splice") else { fatalError("splice(2) not found in libc") }
    return unsafeBitCast(symbol, to: SpliceFunction.self)
}()
private let spliceMove: UInt32 = 1, spliceNonblock: UInt32 = 2

/// One direction of a TCP session: bytes move from `source` through a pipe into `sink` inside
/// the kernel (splice), never through user memory.
private struct SplicePipe {
    var read: Int32 = -1
    var write: Int32 = -1
    var buffered = 0
    var sourceEOF = false
    var finished = false

    mutating func open() -> Bool {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return false }
        read = fds[0]
        write = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        return true
    }

    mutating func closeFDs() {
        if read >= 0 { Glibc.close(read) }
        if write >= 0 { Glibc.close(write) }
        read = -1
        write = -1
    }

    /// Moves what it can from source to sink; `sinkBlocked` means the sink must become writable first.
    mutating func pump(source: Int32, sink: Int32) -> (moved: Int, sinkBlocked: Bool, failed: Bool) {
        var moved = 0
        while true {
            if buffered > 0 {
                let n = spliceCall(read, nil, sink, nil, buffered, spliceMove | spliceNonblock)
                if n > 0 { buffered -= n; moved += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN { return (moved, true, false) }
                return (moved, false, true)
            }
            if sourceEOF { return (moved, false, false) }
            let n = spliceCall(source, nil, write, nil, 256 * 1024, spliceMove | spliceNonblock)
            if n > 0 { buffered += n; continue }
            if n == 0 { sourceEOF = true; return (moved, false, false) }
            if errno == EINTR { continue }
            if errno == EAGAIN { return (moved, false, false) }
            return (moved, false, true)
        }
    }
}

/// A TCP listener's connection: picks an endpoint, connects (trying another endpoint when the
/// connect fails), then splices both directions until both have ended.
final class TCPSession: Ticking {
    private final class Side: ReactorHandler {
        unowned let session: TCPSession
        let isClient: Bool
        init(_ session: TCPSession, isClient: Bool) {
            self.session = session
            self.isClient = isClient
        }
        func handle(events: UInt32) { session.handle(events: events, client: isClient) }
        func abort() { session.close() }
    }

    private let client: Int32
    private var upstream: Int32 = -1
    private let listener: ListenerSocket
    private unowned let worker: Worker
    private var cluster: ClusterRuntime?
    private var endpoint: HostPort?
    private var connected = false
    private var attempts = 0
    private var connectDeadline: Int64 = .max
    private var toUpstream = SplicePipe()
    private var toClient = SplicePipe()
    private var clientSide: Side!
    private var upstreamSide: Side!
    private var closed = false
    var tickSlot = -1

    private init(client: Int32, listener: ListenerSocket) {
        self.client = client
        self.listener = listener
        worker = listener.worker
    }

    static func start(client: Int32, listener: ListenerSocket) {
        let session = TCPSession(client: client, listener: listener)
        session.clientSide = Side(session, isClient: true)
        session.upstreamSide = Side(session, isClient: false)
        session.worker.downstreamCount += 1
        session.worker.stats.add(.downstreamConnectionsActive)
        // Not reading the client until connected: its bytes wait in the kernel.
        session.worker.reactor.add(client, events: EPOLLRDHUP.rawValue, session.clientSide)
        session.worker.reactor.startTicking(session)
        guard session.toUpstream.open(), session.toClient.open() else { return session.close() }
        session.connectNext()
    }

    private func connectNext() {
        let plan = listener.plan
        let now = worker.reactor.now
        if let endpoint, let cluster { cluster.finish(endpoint, .connectFailure, now: now, retry: attempts > 1) }
        guard let cluster = plan.targets.first?.pick(using: &worker.generator) else { return close() }
        self.cluster = cluster
        attempts += 1
        guard attempts <= cluster.config.retries.attempts + 1,
              case .endpoint(let address) = cluster.admit(now: now, retry: attempts > 1, excluding: endpoint) else {
            endpoint = nil
            return close()
        }
        endpoint = address
        if attempts > 1 { worker.stats.add(.upstreamRetries) }
        worker.stats.add(.upstreamConnections)
        if upstream >= 0 { worker.reactor.close(upstream) }
        do {
            upstream = try Socket.connect(address)
        } catch {
            upstream = -1
            worker.stats.add(.upstreamConnectFailures)
            return connectNext()
        }
        connectDeadline = now + Int64(cluster.config.connectTimeoutMilliseconds) * 1_000_000
        worker.reactor.add(upstream, events: EPOLLOUT.rawValue, upstreamSide)
    }

    private func handle(events: UInt32, client isClient: Bool) {
        guard !closed else { return }
        if !connected {
            if isClient {
                if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue) != 0 { close() }
                return
            }
            if Socket.pendingError(upstream) != 0 || events & EPOLLOUT.rawValue == 0 {
                worker.stats.add(.upstreamConnectFailures)
                return connectNext()
            }
            connected = true
            connectDeadline = .max
        }
        pumpAll()
    }

    private func pumpAll() {
        var failed = false
        let up = toUpstream.finished ? (0, false, false) : toUpstream.pump(source: client, sink: upstream)
        let down = toClient.finished ? (0, false, false) : toClient.pump(source: upstream, sink: client)
        failed = up.2 || down.2
        worker.stats.add(.tcpBytesForwarded, up.0 + down.0)
        if failed { return close() }
        if toUpstream.sourceEOF && toUpstream.buffered == 0 && !toUpstream.finished {
            toUpstream.finished = true
            shutdown(upstream, Int32(SHUT_WR))
        }
        if toClient.sourceEOF && toClient.buffered == 0 && !toClient.finished {
            toClient.finished = true
            shutdown(client, Int32(SHUT_WR))
        }
        if toUpstream.finished && toClient.finished { return close() }
        // Read a side only while its pipe has room; wait for writability while a pipe is full.
        var clientEvents: UInt32 = 0, upstreamEvents: UInt32 = 0
        if !toUpstream.sourceEOF && !up.1 { clientEvents |= EPOLLIN.rawValue }
        if up.1 { upstreamEvents |= EPOLLOUT.rawValue }
        if !toClient.sourceEOF && !down.1 { upstreamEvents |= EPOLLIN.rawValue }
        if down.1 { clientEvents |= EPOLLOUT.rawValue }
        worker.reactor.modify(client, events: clientEvents)
        worker.reactor.modify(upstream, events: upstreamEvents)
    }

    func tick(now: Int64) {
        if let deadline = listener.retiredDeadline, now > deadline { return close() }
        if !connected && now > connectDeadline {
            // Its event may still be queued behind others (see `Socket.connectEnded`).
            if Socket.connectEnded(upstream) { return handle(events: EPOLLOUT.rawValue, client: false) }
            worker.stats.add(.upstreamConnectFailures)
            connectNext()
        } else if worker.draining && !connected {
            close()
        }
    }

    private func close() {
        guard !closed else { return }
        closed = true
        if let endpoint, let cluster { cluster.finish(endpoint, connected ? .success : nil, now: worker.reactor.now, retry: attempts > 1) }
        worker.reactor.stopTicking(self)
        worker.reactor.close(client)
        if upstream >= 0 { worker.reactor.close(upstream) }
        toUpstream.closeFDs()
        toClient.closeFDs()
        worker.downstreamCount -= 1
        worker.stats.add(.downstreamConnectionsActive, -1)
    }
}
