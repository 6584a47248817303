import Glibc
import CTandemShim
import Net

/// A connection to one upstream endpoint: serves one exchange at a time, then waits in its
/// worker's pool for the next (keep-alive). Loop-confined.
final class Upstream: ReactorHandler, Corkable {
    let address: HostPort
    let cluster: ClusterRuntime
    /// Held strongly (an unowned reference costs a check at every use): the reactor lets go of
    /// each connection when it closes, and stopAndJoin closes those left, so no cycle outlasts them.
    let worker: Worker
    var fd: Int32 = -1
    /// Where this connection waits while idle.
    let pool: IdleConnections
    var parser = HTTPParser(.response, limits: streamingLimits)
    private var out = OutboundQueue()
    /// The exchange's client while one is attached; every way an exchange ends detaches it.
    private var owner: HTTPDownstream?
    private(set) var isConnected = false
    private var closed = false
    private var readingPaused = false
    private var registered: UInt32 = 0
    private(set) var connectDeadline: Int64 = .max
    var idleSince: Int64 = 0
    /// Bytes of a response arrived on this connection for the current exchange.
    private(set) var receivedBytes = false
    /// Extra bytes after a response, or a close-delimited body: never reuse.
    var poisoned = false
    private(set) var lastStatus = 0

    init(address: HostPort, cluster: ClusterRuntime, worker: Worker) {
        self.address = address
        self.cluster = cluster
        self.worker = worker
        pool = worker.pool(for: address)
    }

    /// Starts a non-blocking connect; false when it failed at once.
    func connect(timeoutMilliseconds: Int) -> Bool {
        do {
            fd = try Socket.connect(address)
        } catch {
            closed = true
            return false
        }
        pool.open += 1
        connectDeadline = worker.reactor.now + Int64(timeoutMilliseconds) * 1_000_000
        registered = EPOLLOUT.rawValue | Reactor.edgeTriggered
        worker.reactor.add(fd, events: registered, self)
        return true
    }

    /// Past the connect deadline: handles the connect now if it has ended and its event is still
    /// queued (`Socket.connectEnded`); false when it has truly not finished in time.
    func handleEndedConnect() -> Bool {
        guard Socket.connectEnded(fd) else { return false }
        handle(events: EPOLLOUT.rawValue)
        return true
    }

    var isFull: Bool { out.isFull }
    var reusable: Bool { !poisoned && !closed && isConnected && parser.isIdle && out.pending == 0 }

    func attach(to downstream: HTTPDownstream, respondingToHEAD: Bool) {
        owner = downstream
        receivedBytes = false
        lastStatus = 0
        parser.respondingToHEAD = respondingToHEAD
        resumeReading()
    }

    func detach() { owner = nil }

    func returnToPool() {
        guard worker.putIdle(self) else { return close() }
        idleSince = worker.reactor.now
        readingPaused = false
        updateInterest()
    }

    func uncork() {
        guard out.corked else { return }
        out.corked = false
        guard !closed, isConnected else { return }
        guard out.flush(fd) else { return failed() }
        // The downstream may have stopped reading while this queue filled during the batch.
        if out.pending == 0 { owner?.upstreamDrained() }
        updateInterest()
    }

    func send(_ bytes: UnsafeRawBufferPointer) {
        guard !closed else { return }
        if worker.reactor.inBatch && !out.corked {
            out.corked = true
            worker.reactor.holdUntilBatchEnd(self)
        }
        if !isConnected { return out.queue(bytes) }
        guard out.write(fd, bytes) else { return failed() }
        if out.pending > 0 && !out.corked { updateInterest() }
    }

    func handle(events: UInt32) {
        guard !closed else { return }
        if !isConnected {
            let code = Socket.pendingError(fd)
            if code != 0 || events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 && events & EPOLLOUT.rawValue == 0 {
                let owner = self.owner
                close()
                owner?.upstreamFailed(connecting: true)
                return
            }
            guard events & EPOLLOUT.rawValue != 0 else { return }
            isConnected = true
            cluster.connectFinished()
            connectDeadline = .max
        }
        if events & EPOLLOUT.rawValue != 0 {
            guard out.flush(fd) else { return failed() }
            if out.pending == 0 { owner?.upstreamDrained() }
        }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 && !readingPaused {
            readAvailable(finQueued: events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue) != 0)
        }
        if !closed { updateInterest() }
    }

    /// Reads until the socket is drained: a short read, unless the peer's FIN is queued too.
    private func readAvailable(finQueued: Bool) {
        let scratch = worker.reactor.scratch
        while !closed && !readingPaused {
            let n = Glibc.recv(fd, scratch.baseAddress!, scratch.count, 0)
            if n > 0 {
                guard let owner else {
                    // An idle connection has nothing to say: the server is going away.
                    worker.removeIdle(self)
                    return close()
                }
                receivedBytes = true
                if lastStatus == 0, n >= 12 { lastStatus = Self.status(scratch) }
                owner.upstreamReceived(self, UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                if n < scratch.count && !finQueued { return }
            } else if n == 0 {
                guard let owner else {
                    worker.removeIdle(self)
                    return close()
                }
                return owner.upstreamEOF(self)
            } else {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { return failed() }
                return
            }
        }
    }

    /// The status code from a status line at the start of `bytes` (0 when it is not one).
    private static func status(_ bytes: UnsafeMutableRawBufferPointer) -> Int {
        guard bytes[0] == UInt8(ascii: "H") else { return 0 }
        var value = 0
        for i in 9..<12 {
            let digit = Int(bytes[i]) - 48
            guard (0...9).contains(digit) else { return 0 }
            value = value * 10 + digit
        }
        return value
    }

    private func failed() {
        let owner = self.owner
        self.owner = nil
        close()
        owner?.upstreamFailed(connecting: false)
    }

    func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    private func updateInterest() {
        guard !closed, fd >= 0 else { return }
        var events = Reactor.edgeTriggered
        if !isConnected {
            events |= EPOLLOUT.rawValue
        } else {
            if !readingPaused { events |= Reactor.readable }
            if out.pending > 0 { events |= EPOLLOUT.rawValue }
        }
        guard events != registered else { return }
        registered = events
        worker.reactor.modify(fd, events: events)
    }

    func abort() { close() }

    func close() {
        guard !closed else { return }
        closed = true
        pool.open -= 1
        if owner == nil { worker.removeIdle(self) }
        owner = nil
        if !isConnected { cluster.connectFinished() }
        cluster.closedConnection()
        worker.reactor.close(fd)
    }
}
