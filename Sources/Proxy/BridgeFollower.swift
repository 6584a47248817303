import Dispatch
import Glibc
import Synchronization
import Net
import Telemetry

/// Keeps bridged clusters' endpoints in step with the discovery bridge: one long-poll per
/// cluster (`GET /v1/watch/<service>?version=N`, see `BridgeWatch`) on a Net event loop of its
/// own, each change applied in place. While the bridge cannot be reached a cluster keeps its last
/// endpoints. The loop starts with the first bridged cluster, so a proxy without one has no
/// extra thread.
final class BridgeFollower: Sendable {
    /// Per followed cluster, for the metrics: written on the loop, read by scrapes.
    struct Status {
        var updates = 0
        var failures = 0
        var connected = false
        var lastSuccess: NanoTime?
    }

    private let timing: BridgeWatch.Timing
    private let log: @Sendable (Logger.Level, String) -> Void
    private let runtime = Mutex<Runtime?>(nil)
    private let statuses = Mutex<[String: Status]>([:])

    init(timing: BridgeWatch.Timing = BridgeWatch.Timing(), metrics: MetricsRegistry,
         log: @escaping @Sendable (Logger.Level, String) -> Void) {
        self.timing = timing
        self.log = log
        declare(metrics)
    }

    /// `proxy`'s configuration changed (or it started): start and stop long-polls to match.
    func follow(_ proxy: ProxyServer) {
        let runtime = self.runtime.withLock { runtime -> Runtime? in
            if runtime == nil && !Self.targets(proxy.config).isEmpty {
                do { runtime = try Runtime() } catch {
                    log(.error, "tandem proxy: cannot start the bridge client: \(error)")
                }
            }
            return runtime
        }
        // The configuration is read again on the loop: of two changes in quick succession, the
        // later one wins whichever order these tasks run in.
        runtime?.loop.execute { [self, weak proxy] in
            guard let proxy, let runtime = self.runtime.withLock({ $0 }) else { return }
            runtime.proxy = proxy
            reconcile(runtime, Self.targets(proxy.config))
        }
    }

    static func targets(_ config: ProxyConfig) -> [String: ProxyConfig.BridgeService] {
        var targets: [String: ProxyConfig.BridgeService] = [:]
        for cluster in config.clusters { targets[cluster.name] = config.bridgeService(of: cluster) }
        return targets
    }

    /// Cancels every poll, closes the connections and stops the loop. Idempotent.
    func stop() {
        guard let runtime = runtime.withLock({ runtime -> Runtime? in
            defer { runtime = nil }
            return runtime
        }) else { return }
        let closed = DispatchSemaphore(value: 0)
        runtime.loop.execute { [self] in
            for watch in runtime.watches.values { end(watch, runtime) }
            runtime.watches = [:]
            statuses.withLock { $0 = [:] }
            runtime.client.closeIdleConnections { closed.signal() }
        }
        closed.wait()
        runtime.group.shutdown()
    }

    // MARK: Loop

    private func reconcile(_ runtime: Runtime, _ targets: [String: ProxyConfig.BridgeService]) {
        for (cluster, watch) in runtime.watches where targets[cluster] != watch.state.source {
            end(watch, runtime)
            runtime.watches[cluster] = nil
            statuses.withLock { $0[cluster] = nil }
        }
        for (cluster, source) in targets where runtime.watches[cluster] == nil {
            let watch = Watch(BridgeWatch(cluster: cluster, source: source, timing: timing))
            runtime.watches[cluster] = watch
            statuses.withLock { $0[cluster] = Status() }
            poll(watch, runtime)
        }
    }

    private func end(_ watch: Watch, _ runtime: Runtime) {
        watch.ended = true
        watch.exchange?.cancel()
        if let timer = watch.timer { runtime.loop.cancel(timer) }
    }

    private func poll(_ watch: Watch, _ runtime: Runtime) {
        guard !watch.ended else { return }
        watch.timer = nil
        watch.started = NanoTime.now()
        watch.status = 0
        watch.body = []
        let request: HTTPClientRequest
        do { request = try HTTPClientRequest(url: watch.state.url, headers: ["Accept": "application/json"]) } catch {
            return perform(watch.state.failed(error.description, random: runtime.random()), watch, runtime)
        }
        watch.exchange = runtime.client.execute(request, handler: HTTPResponseHandler(
            head: { head in watch.status = head.status },
            body: { bytes in watch.body += bytes },
            complete: { [self] result in
                watch.exchange = nil
                guard !watch.ended else { return }
                switch result {
                case .success:
                    let elapsed = NanoTime.now().nanoseconds - watch.started.nanoseconds
                    perform(watch.state.answered(status: watch.status, body: watch.body, elapsed: elapsed, random: runtime.random()),
                            watch, runtime)
                case .failure(let error):
                    perform(watch.state.failed("\(error)", random: runtime.random()), watch, runtime)
                }
            }))
    }

    private func perform(_ actions: [BridgeWatch.Action], _ watch: Watch, _ runtime: Runtime) {
        let cluster = watch.state.cluster
        let succeeded = watch.state.reachable == true
        statuses.withLock { statuses in
            statuses[cluster]?.connected = succeeded
            if succeeded { statuses[cluster]?.lastSuccess = NanoTime.now() } else { statuses[cluster]?.failures += 1 }
        }
        for action in actions {
            switch action {
            case .apply(let endpoints):
                // Refused only when a reload changed the cluster's source after this poll began.
                if (try? runtime.proxy?.setEndpoints(endpoints, cluster: cluster, from: watch.state.source)) == true {
                    statuses.withLock { $0[cluster]?.updates += 1 }
                }
            case .log(let level, let line):
                log(level, line)
            case .poll(let delay):
                if delay <= 0 {
                    poll(watch, runtime)
                } else {
                    watch.timer = runtime.loop.schedule(after: .nanoseconds(delay)) { [self] in poll(watch, runtime) }
                }
            }
        }
    }

    private func declare(_ metrics: MetricsRegistry) {
        let series: [(String, MetricType, String, @Sendable (Status, NanoTime) -> Double?)] = [
            ("tandem_proxy_discovery_updates_total", .counter, "Endpoint changes from the bridge applied to a cluster.",
             { status, _ in Double(status.updates) }),
            ("tandem_proxy_discovery_failures_total", .counter, "Bridge polls that failed (refused, timed out, not 200, bad answer).",
             { status, _ in Double(status.failures) }),
            ("tandem_proxy_discovery_connected", .gauge, "1 when the last poll of the bridge succeeded.",
             { status, _ in status.connected ? 1 : 0 }),
            ("tandem_proxy_discovery_last_success_age_seconds", .gauge, "Seconds since the bridge last answered a poll; it holds each poll up to its long-poll timeout (30 s by default).",
             { status, now in status.lastSuccess.map { Double(now.nanoseconds - $0.nanoseconds) / 1e9 } }),
        ]
        for (name, type, help, value) in series {
            metrics.collected(name, help: help, type: type, labels: ["cluster"]) { [self] in
                let now = NanoTime.now()
                return statuses.withLock { $0 }.compactMap { cluster, status in value(status, now).map { (labels: [cluster], value: $0) } }
            }
        }
    }
}

/// The loop, the client and the watches, alive while some cluster follows the bridge.
private final class Runtime: @unchecked Sendable {
    let group: EventLoopGroup
    let loop: EventLoop
    let client: HTTPClient
    /// Loop-confined, as is everything below.
    var watches: [String: Watch] = [:]
    weak var proxy: ProxyServer?
    private var generator = SplitMix64(seed: UInt64(bitPattern: NanoTime.now().nanoseconds) ^ UInt64(getpid()))

    init() throws(SystemError) {
        group = try EventLoopGroup(threads: 1)
        loop = group.next()
        // The bridge holds a poll for up to its long-poll timeout (30 s by default) before it
        // answers, so the body may be silent that long; a bridge gone quiet is noticed after 75 s.
        client = HTTPClient(loop: loop, configuration: HTTPClientConfiguration(
            connectTimeout: .seconds(2), responseTimeout: .seconds(10), bodyReadTimeout: .seconds(75),
            maxIdleConnectionsPerOrigin: 64, limits: HTTPLimits(maxBodyBytes: 16 << 20)))
    }

    func random() -> Double { Double.random(in: 0..<1, using: &generator) }
}

/// One cluster's long-poll: its state machine and the exchange or timer in progress. Loop-confined.
private final class Watch: @unchecked Sendable {
    var state: BridgeWatch
    var exchange: HTTPRequestCancellation?
    var timer: TimerID?
    var started = NanoTime.now()
    var status = 0
    var body: [UInt8] = []
    /// Set when the cluster stops following (reload, stop): late callbacks do nothing.
    var ended = false

    init(_ state: BridgeWatch) { self.state = state }
}
