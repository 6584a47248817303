import Glibc
import CTandemShim
import Synchronization
import Net

/// What a listener needs to route, as one immutable value: swapped in place on reload, so open
/// connections pick up new routes and clusters with their next request.
final class ListenerPlan: Sendable {
    let config: ProxyConfig.Listener
    let table: RouteTable
    /// One per route, in the table's order.
    let targets: [RouteTarget]
    /// Plans alive now, across every proxy in the process: old ones must not pile up on reload.
    static let live = Atomic<Int>(0)

    deinit { Self.live.subtract(1, ordering: .relaxed) }

    init(_ config: ProxyConfig.Listener, clusters: [String: ClusterRuntime]) {
        Self.live.add(1, ordering: .relaxed)
        self.config = config
        table = RouteTable(config.routes)
        targets = config.routes.map { RouteTarget($0, clusters: clusters) }
    }
}

/// A route as the request path uses it: its clusters' runtimes looked up once, here, rather
/// than by name for every request.
final class RouteTarget: Sendable {
    let weighted: [ProxyConfig.WeightedCluster]
    /// Parallel to `weighted`; nil for a cluster the configuration does not define.
    let runtimes: [ClusterRuntime?]
    let timeoutNanoseconds: Int64

    init(_ route: ProxyConfig.Route, clusters: [String: ClusterRuntime]) {
        weighted = route.clusters
        runtimes = route.clusters.map { clusters[$0.cluster] }
        timeoutNanoseconds = Int64(route.timeoutMilliseconds) * 1_000_000
    }

    /// One of the route's clusters, drawn by weight.
    func pick(using generator: inout SplitMix64) -> ClusterRuntime? {
        runtimes[pickWeighted(weighted, using: &generator)]
    }
}

/// Idle keep-alive connections to one endpoint, most recently used last. A class, so taking
/// one and putting one back change the list in place, not through the dictionary that holds it.
/// It stays in that dictionary while any connection to its endpoint is open, so each one holds
/// its pool and goes back to it without a lookup.
final class IdleConnections {
    let address: HostPort
    var connections: [Upstream] = []
    /// Connections to this endpoint now open, idle or not.
    var open = 0

    init(_ address: HostPort) { self.address = address }
}

/// One thread of the data plane: its reactor, its listening sockets (one per listener, bound
/// with SO_REUSEPORT), its idle upstream connections and its counters. Loop-confined.
final class Worker: @unchecked Sendable {
    let reactor: Reactor
    let stats = WorkerStats()
    var generator: SplitMix64
    var listeners: [String: ListenerSocket] = [:]
    /// Idle keep-alive connections to each endpoint.
    var pools: [HostPort: IdleConnections] = [:]
    /// Graceful drain: responses say `Connection: close` and idle clients are let go.
    var draining = false
    /// The pod is going away: inbound responses say `Connection: close`, but idle clients are not
    /// cut off (one may be sending a request on its idle connection right now).
    var endsInboundKeepAlive = false
    var downstreamCount = 0
    /// Request and response heads are written here, one at a time, so they cost no allocation.
    var headBuffer: [UInt8] = []
    static let upstreamIdleNanoseconds: Int64 = 30_000_000_000
    /// Idle connections kept per endpoint: a burst of thousands must not stay open for 30 s.
    static let maxIdlePerEndpoint = 128

    init(index: Int) throws(SocketError) {
        reactor = try Reactor(index: index)
        generator = SplitMix64(seed: 0x7A4D_E000 &+ UInt64(index))
        reactor.onTick.append { [unowned self] now in
            self.stats.publish()
            self.expireIdleUpstreams(now: now)
        }
    }

    /// The pool last looked up. A sidecar's cluster mostly has one endpoint (its app): then
    /// requests find their pool here rather than by hashing the address.
    private var lastPool: IdleConnections?

    func takeIdle(_ address: HostPort) -> Upstream? {
        if let lastPool, lastPool.address == address { return lastPool.connections.popLast() }
        guard let pool = pools[address] else { return nil }
        lastPool = pool
        return pool.connections.popLast()
    }

    /// The pool of connections to `address`, made on first use.
    func pool(for address: HostPort) -> IdleConnections {
        if let existing = pools[address] { return existing }
        let made = IdleConnections(address)
        pools[address] = made
        return made
    }

    /// Keeps `upstream` for reuse; false when the pool is full (the caller closes it).
    func putIdle(_ upstream: Upstream) -> Bool {
        let idle = upstream.pool
        guard idle.connections.count < Self.maxIdlePerEndpoint else { return false }
        idle.connections.append(upstream)
        return true
    }

    func removeIdle(_ upstream: Upstream) {
        let idle = upstream.pool
        guard let index = idle.connections.lastIndex(where: { $0 === upstream }) else { return }
        idle.connections.remove(at: index)
    }

    private func expireIdleUpstreams(now: Int64) {
        for (_, idle) in pools {
            for upstream in idle.connections where now - upstream.idleSince > Self.upstreamIdleNanoseconds { upstream.close() }
        }
        // Endpoints that come and go must not leave entries behind once nothing is open to them.
        if pools.values.contains(where: { $0.open == 0 }) {
            pools = pools.filter { $0.value.open > 0 }
            lastPool = nil
        }
    }

    /// Closes every idle upstream connection (on reload, endpoints may have gone).
    func closeIdleUpstreams(notIn keep: Set<HostPort>) {
        for (address, idle) in pools where !keep.contains(address) {
            for upstream in idle.connections { upstream.close() }
        }
    }
}

/// A listening socket on one worker.
final class ListenerSocket: ReactorHandler, Ticking {
    let fd: Int32
    unowned let worker: Worker
    var plan: ListenerPlan
    let port: Int
    private var closed = false
    /// Not listening until the next tick, after accepting failed (out of descriptors).
    private var paused = false
    var tickSlot = -1

    init(plan: ListenerPlan, worker: Worker, fd: Int32) {
        self.plan = plan
        self.worker = worker
        self.fd = fd
        port = Socket.localPort(fd)
    }

    func start() {
        worker.reactor.add(fd, events: EPOLLIN.rawValue, self)
    }

    func handle(events: UInt32) {
        for _ in 0..<64 {
            let accepted: (Int32, String)?
            do { accepted = try Socket.accept(fd) } catch {
                return pause()
            }
            guard let (client, peer) = accepted else { return }
            worker.stats.add(.downstreamConnections)
            switch plan.config.protocol {
            case .http: HTTPDownstream(fd: client, peerIP: peer, listener: self).start()
            case .tcp: TCPSession.start(client: client, listener: self)
            }
        }
    }

    /// Out of descriptors, a level-triggered listener would be reported ready again at once and
    /// spin: stop listening until the next tick (100 ms) while open connections finish. The
    /// connections waiting stay in the kernel's backlog.
    private func pause() {
        guard !paused, !closed else { return }
        paused = true
        worker.stats.add(.downstreamAcceptPauses)
        worker.reactor.modify(fd, events: 0)
        worker.reactor.startTicking(self)
    }

    func tick(now: Int64) {
        worker.reactor.stopTicking(self)
        paused = false
        if !closed { worker.reactor.modify(fd, events: EPOLLIN.rawValue) }
    }

    /// Set once the listener is removed or drained: its connections close at this time.
    private(set) var retiredDeadline: Int64?

    /// Stops accepting; open connections finish their current request, or are closed at `deadline`.
    func retire(deadline: Int64) {
        retiredDeadline = deadline
        close()
    }

    func abort() { close() }

    /// Stops accepting; open connections carry on.
    func close() {
        guard !closed else { return }
        closed = true
        if paused { worker.reactor.stopTicking(self) }
        worker.reactor.close(fd)
    }
}
