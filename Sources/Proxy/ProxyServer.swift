import Glibc
import CTandemShim
import Synchronization
import Net
import Telemetry

/// The proxy as a library: start it, reconfigure it in place, drain it, stop it, all from
/// another Swift program (the CLI and the tests are two such programs).
///
/// ```swift
/// let proxy = try ProxyServer(config: config, workers: 1)
/// try proxy.start()
/// let port = proxy.port(of: "inbound")
/// try proxy.apply(newConfig)        // in place: open connections carry on
/// proxy.stop()
/// ```
///
/// Clusters that name a bridge `service` follow it from `start` on (see `BridgeFollower`).
public final class ProxyServer: Sendable {
    public let workerCount: Int
    /// How long removed listeners and a graceful drain may keep serving open connections.
    public let drainTimeout: Duration
    /// The proxy's statistics, read from the workers and clusters when scraped.
    public let metrics: MetricsRegistry
    private let workers: [Worker]
    private let follower: BridgeFollower
    /// Held through a whole update, so that an update built from the configuration in force
    /// (`setEndpoints`, from the bridge's thread) cannot interleave with a reload.
    private let updating = Mutex<Void>(())

    private struct State {
        var config: ProxyConfig
        var clusters: [String: ClusterRuntime] = [:]
        var ports: [String: Int] = [:]
        var started = false
        var stopped = false
        var draining = false
        var reloads = 0
    }
    private let state: Mutex<State>

    /// `log` gets progress and trouble from following the bridge (reachable or not, changes).
    public init(config: ProxyConfig, workers: Int = 1, drainTimeout: Duration = .seconds(5), metrics: MetricsRegistry = MetricsRegistry(),
                log: @escaping @Sendable (Logger.Level, String) -> Void = { _, _ in }) throws(ConfigError) {
        try ConfigReader.validate(config)
        workerCount = max(1, workers)
        self.drainTimeout = drainTimeout
        self.metrics = metrics
        var made: [Worker] = []
        for index in 0..<workerCount {
            do { made.append(try Worker(index: index)) } catch { throw ConfigError("", "cannot start worker: \(error)") }
        }
        self.workers = made
        var initial = State(config: config)
        for (index, cluster) in config.clusters.enumerated() {
            initial.clusters[cluster.name] = ClusterRuntime(cluster, seed: UInt64(index) &+ 0x5EED)
        }
        state = Mutex(initial)
        follower = BridgeFollower(metrics: metrics, log: log)
        tandem_ignore_sigpipe()
        HealthChecker.install(on: made[0], clusters: { [weak self] in self?.clusterRuntimes ?? [] })
        declareMetrics()
    }

    /// Binds every listener on every worker (SO_REUSEPORT) and starts the worker threads.
    public func start() throws(ConfigError) {
        let (config, clusters) = state.withLock { ($0.config, $0.clusters) }
        var bound: [(String, [Int32], Int)] = []
        for (index, listener) in config.listeners.enumerated() {
            do {
                let (fds, port) = try bind(listener.address)
                bound.append((listener.name, fds, port))
            } catch {
                for (_, fds, _) in bound { for fd in fds { Glibc.close(fd) } }
                throw ConfigError("listeners[\(index)].address", "\(error)")
            }
        }
        for ((name, fds, _), listener) in zip(bound, config.listeners) {
            let plan = ListenerPlan(listener, clusters: clusters)
            for (worker, fd) in zip(workers, fds) {
                let socket = ListenerSocket(plan: plan, worker: worker, fd: fd)
                worker.listeners[name] = socket
                socket.start()
            }
        }
        state.withLock { state in
            for (name, _, port) in bound { state.ports[name] = port }
            state.started = true
        }
        for worker in workers { worker.reactor.start() }
        follower.follow(self)
    }

    /// One listening socket per worker on the same port; port 0 is chosen by the probe.
    /// SO_REUSEPORT would let a second proxy silently join a port another one (a stale process,
    /// say) already serves and take half its traffic, so the port is first bound without it.
    /// A port the kernel chose can be taken by another socket in the moment between the probe
    /// and the workers' sockets; then a new one is chosen, a few times at most.
    private func bind(_ address: HostPort) throws(SocketError) -> ([Int32], Int) {
        var attempts = 0
        while true {
            attempts += 1
            var fds: [Int32] = []
            var bound = address
            do {
                let probe = try Socket.listen(bound, reusePort: false)
                bound.port = Socket.localPort(probe)
                Glibc.close(probe)
                for _ in workers { fds.append(try Socket.listen(bound, reusePort: true)) }
                return (fds, bound.port)
            } catch {
                for fd in fds { Glibc.close(fd) }
                guard address.port == 0, error.code == EADDRINUSE, attempts < 5 else { throw error }
            }
        }
    }

    /// The port a listener is bound to (useful when it was configured as port 0).
    public func port(of listener: String) -> Int? { state.withLock { $0.ports[listener] } }

    public var config: ProxyConfig { state.withLock { $0.config } }
    public var isDraining: Bool { state.withLock { $0.draining } }
    public var reloadCount: Int { state.withLock { $0.reloads } }
    var clusterRuntimes: [ClusterRuntime] { state.withLock { state in state.config.clusters.compactMap { state.clusters[$0.name] } } }

    /// Applies a new configuration in place. Clusters keep their counters and ejections;
    /// listeners that stay keep their sockets and connections and route the next request by the
    /// new table; removed listeners stop accepting and their connections are closed after
    /// `drainTimeout`. Nothing old is kept once its last connection ends. A cluster that follows
    /// the same bridge service as before keeps the endpoints the bridge gave it.
    public func apply(_ config: ProxyConfig) throws(ConfigError) {
        try updating.withLock { _ throws(ConfigError) in
            let old = self.config
            var next = config
            for index in next.clusters.indices {
                guard let source = next.bridgeService(of: next.clusters[index]),
                      let previous = old.cluster(named: next.clusters[index].name), old.bridgeService(of: previous) == source else { continue }
                next.clusters[index].endpoints = previous.endpoints
            }
            try install(next)
        }
        if state.withLock({ $0.started && !$0.stopped }) { follower.follow(self) }
    }

    /// Replaces one cluster's endpoints, as a discovery source does (a whole set each time, as
    /// an xDS ClusterLoadAssignment; empty means scaled to zero). Applied in place like `apply`.
    /// With `source`, only while the cluster still follows that bridge service: an answer that
    /// arrives after a reload changed it is dropped (and false returned).
    @discardableResult
    public func setEndpoints(_ endpoints: [ProxyConfig.Endpoint], cluster name: String,
                             from source: ProxyConfig.BridgeService? = nil) throws(ConfigError) -> Bool {
        try updating.withLock { _ throws(ConfigError) -> Bool in
            var next = config
            guard let index = next.clusters.firstIndex(where: { $0.name == name }) else {
                throw ConfigError("clusters", "unknown cluster \"\(name)\"")
            }
            if let source, next.bridgeService(of: next.clusters[index]) != source { return false }
            next.clusters[index].endpoints = endpoints
            try install(next)
            return true
        }
    }

    /// Swaps `config` in (the caller holds `updating`).
    private func install(_ config: ProxyConfig) throws(ConfigError) {
        try ConfigReader.validate(config)
        let old = self.config
        // Bind new listeners first, so a port in use fails the whole update and changes nothing.
        var added: [String: ([Int32], Int)] = [:]
        for (index, listener) in config.listeners.enumerated() {
            if let previous = old.listeners.first(where: { $0.name == listener.name }),
               previous.address == listener.address, previous.protocol == listener.protocol { continue }
            do {
                added[listener.name] = try bind(listener.address)
            } catch {
                for (fds, _) in added.values { for fd in fds { Glibc.close(fd) } }
                throw ConfigError("listeners[\(index)].address", "\(error)")
            }
        }
        let clusters = state.withLock { state -> [String: ClusterRuntime] in
            var next: [String: ClusterRuntime] = [:]
            for (index, cluster) in config.clusters.enumerated() {
                if let runtime = state.clusters[cluster.name] {
                    runtime.update(cluster)
                    next[cluster.name] = runtime
                } else {
                    next[cluster.name] = ClusterRuntime(cluster, seed: UInt64(index) &+ UInt64(state.reloads) &+ 0x5EED)
                }
            }
            state.clusters = next
            state.config = config
            state.reloads += 1
            for listener in old.listeners where !config.listeners.contains(where: { $0.name == listener.name }) {
                state.ports[listener.name] = nil
            }
            for (name, (_, port)) in added { state.ports[name] = port }
            return next
        }
        // Idle connections to endpoints that left or are terminating will take no new request.
        let serving = Set(config.clusters.flatMap { $0.endpoints.filter { !$0.terminating }.map(\.address) })
        let drainNanoseconds = drainTimeout.nanoseconds
        for (index, worker) in workers.enumerated() {
            let plans = config.listeners.map { ListenerPlan($0, clusters: clusters) }
            let fresh = added.mapValues { $0.0[index] }
            worker.reactor.execute { [worker] in
                var kept: [String: ListenerSocket] = [:]
                for plan in plans {
                    let name = plan.config.name
                    if let fd = fresh[name] {
                        worker.listeners[name]?.retire(deadline: worker.reactor.now + drainNanoseconds)
                        let socket = ListenerSocket(plan: plan, worker: worker, fd: fd)
                        socket.start()
                        kept[name] = socket
                    } else if let socket = worker.listeners[name] {
                        socket.plan = plan
                        kept[name] = socket
                    }
                }
                for (name, socket) in worker.listeners where kept[name] == nil {
                    socket.retire(deadline: worker.reactor.now + drainNanoseconds)
                }
                worker.listeners = kept
                worker.closeIdleUpstreams(notIn: serving)
            }
        }
    }

    /// The pod is going away: inbound responses say `Connection: close` from now on, so keep-alive
    /// clients reconnect (to pods that stay, once endpoint removal reaches them). Every listener
    /// still accepts, idle connections stay open, and outbound connections are untouched.
    public func endInboundKeepAlive() {
        for worker in workers {
            worker.reactor.execute { [worker] in worker.endsInboundKeepAlive = true }
        }
    }

    /// Stops accepting on every listener (with `inboundOnly`, on inbound ones: a sidecar keeps
    /// its app's outbound calls working while it drains). Open connections finish their current
    /// request and are closed (`Connection: close`); idle ones are closed at once. With
    /// `graceful`, they get `drainTimeout` to finish; without, they are closed now.
    public func drainListeners(graceful: Bool = true, inboundOnly: Bool = false) {
        state.withLock { $0.draining = true }
        let deadline = graceful ? drainTimeout.nanoseconds : 0
        for worker in workers {
            worker.reactor.execute { [worker] in
                if !inboundOnly { worker.draining = true }
                for (name, socket) in worker.listeners where !inboundOnly || socket.plan.config.direction == .inbound {
                    socket.retire(deadline: worker.reactor.now + deadline)
                    worker.listeners[name] = nil
                }
            }
        }
    }

    /// Client connections open now, across workers (as of the last tick, at most 100 ms old).
    public var activeConnections: Int {
        workers.reduce(0) { $0 + $1.stats.snapshot[ProxyStat.downstreamConnectionsActive.rawValue] }
    }

    /// Every declared statistic, summed over workers.
    public func statistics() -> [ProxyStat: Int] {
        var totals: [ProxyStat: Int] = [:]
        for worker in workers {
            let values = worker.stats.snapshot
            for stat in ProxyStat.allCases { totals[stat, default: 0] += values[stat.rawValue] }
        }
        return totals
    }

    /// Declares every statistic in `metrics`, read at each scrape: the workers' counters summed,
    /// the clusters as they are now (a removed cluster's series go with it).
    private func declareMetrics() {
        for stat in ProxyStat.allCases {
            metrics.collected(stat.name, help: stat.help, type: stat.type) { [weak self] in
                [(labels: [], value: Double(self?.statistics()[stat] ?? 0))]
            }
        }
        let perCluster: [(String, MetricType, String, @Sendable (ClusterRuntime.Snapshot) -> Int)] = [
            ("tandem_proxy_cluster_requests_active", .gauge, "Requests in flight per cluster.", { $0.activeRequests }),
            ("tandem_proxy_cluster_endpoints_healthy", .gauge, "Endpoints that may take new requests.", { $0.available }),
            ("tandem_proxy_cluster_outlier_ejections_total", .counter, "Endpoints ejected for consecutive failures.", { $0.ejections }),
        ]
        for (name, type, help, value) in perCluster {
            metrics.collected(name, help: help, type: type, labels: ["cluster"]) { [weak self] in
                (self?.clusterSnapshots() ?? []).map { (labels: [$0.name], value: Double(value($0))) }
            }
        }
        metrics.collected("tandem_proxy_config_reloads", help: "Configurations applied since start.", type: .gauge) { [weak self] in
            [(labels: [], value: Double(self?.reloadCount ?? 0))]
        }
    }

    func clusterSnapshots() -> [ClusterRuntime.Snapshot] {
        let now = NanoTime.now().nanoseconds
        return clusterRuntimes.map { $0.snapshot(now: now) }
    }

    /// Stops the workers at once, closing listeners and connections' loops. Idempotent.
    public func stop() {
        let shouldStop = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return state.started && !state.stopped
        }
        guard shouldStop else { return }
        follower.stop()
        for worker in workers {
            worker.reactor.execute { [worker] in
                for socket in worker.listeners.values { socket.close() }
                worker.listeners = [:]
            }
            worker.reactor.stopAndJoin()
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
