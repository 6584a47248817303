import Glibc
import Document
import Net
import Synchronization
import Telemetry

/// Settings of a running bridge.
public struct BridgeConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var tokens: Set<String>
    public var environment: String
    public var defaultNamespace: String
    /// Legacy heartbeat TTL, seconds.
    public var ttl: Double
    /// How long a long-poll waits for a change before answering with what it has.
    public var longPollTimeout: Duration
    /// How often expired hosts are swept and long-polls timed out.
    public var sweepInterval: Duration

    public init(host: String = "127.0.0.1", port: Int = 0, tokens: Set<String> = [], environment: String = "production",
                defaultNamespace: String = "default", ttl: Double = 600, longPollTimeout: Duration = .seconds(30),
                sweepInterval: Duration = .milliseconds(250)) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.environment = environment
        self.defaultNamespace = defaultNamespace
        self.ttl = ttl
        self.longPollTimeout = longPollTimeout
        self.sweepInterval = sweepInterval
    }
}

/// The bridge's HTTP shell: `BridgeAPI` and the registry behind a lock, long-polls parked until
/// their service changes, and an active sweeper that expires silent legacy hosts.
public final class BridgeServer: Sendable {
    private struct Waiter {
        let service: String
        let deadline: NanoTime
        let writer: HTTPResponseWriter
    }

    private struct State {
        var registry: Registry
        var waiters: [Waiter] = []
        var writer: Writer = .this
        /// False until the Kubernetes side has been listed once (when there is one).
        var ready = true
    }

    private let state: Mutex<State>
    private let api: BridgeAPI
    private let metrics: MetricsRegistry
    private let requests: Counter
    private let expirations: Counter
    private let configuration: BridgeConfiguration
    private let group: EventLoopGroup
    private let server: Mutex<HTTPServer?> = Mutex(nil)
    /// Carries writes to the writer replica; short timeouts, as an agent waits on the answer.
    private let forwarder: HTTPClient
    private let sweeping = Atomic<Bool>(false)
    /// Wall-clock seconds since the epoch: registrations carry heartbeat times in it.
    private let clock: @Sendable () -> Double

    public init(configuration: BridgeConfiguration, group: EventLoopGroup, metrics: MetricsRegistry = MetricsRegistry(),
                clock: @escaping @Sendable () -> Double = BridgeServer.wallClock) {
        self.configuration = configuration
        self.group = group
        self.clock = clock
        self.metrics = metrics
        requests = metrics.counter("tandem_bridge_requests_total", help: "API requests by method and HTTP status.",
                                   labels: ["method", "status"])
        expirations = metrics.counter("tandem_bridge_expired_total",
                                      help: "Services that lost legacy hosts to the heartbeat TTL.")
        api = BridgeAPI(tokens: configuration.tokens, environment: configuration.environment)
        forwarder = HTTPClient(loop: group.next(), configuration: HTTPClientConfiguration(
            connectTimeout: .seconds(2), responseTimeout: .seconds(5), limits: HTTPLimits(maxBodyBytes: 1 << 20)))
        // Versions count from the clock (milliseconds), so that a poller holding a version from an
        // earlier run never finds it equal to one of this run's and waits on news it missed.
        let registry = Registry(defaultNamespace: configuration.defaultNamespace, ttl: configuration.ttl,
                                startingVersion: UInt64(max(0, clock() * 1000)))
        state = Mutex(State(registry: registry))
        declareGauges()
    }

    public static let wallClock: @Sendable () -> Double = {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// The bridge's clock now (seconds since the epoch), as registrations are stamped.
    public var now: Double { clock() }

    public var localAddress: SocketAddress? { server.withLock { $0?.localAddress } }

    public func start() async throws {
        var routes = HTTPRoutes()
        let api = self.api
        routes.add(.get, "/healthz") { _ in .text(200, "ok\n") }
        routes.add(.get, "/readyz") { [self] _ in
            state.withLock { $0.ready } ? .text(200, "ok\n") : .text(503, "the Kubernetes side is not listed yet\n")
        }
        routes.add(.get, "/metrics") { [self] _ in
            HTTPResponse(status: 200, headers: ["Content-Type": MetricsRegistry.contentType], body: Array(metrics.exposition().utf8))
        }
        routes.add(.get, "/") { [self] _ in
            let html = state.withLock { BridgePage.render($0.registry, now: clock()) }
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/html; charset=utf-8"], body: Array(html.utf8))
        }
        routes.add(.get, "/v1/watch/*") { [self] request in watch(request) }
        for method in [HTTPMethod.get, .post, .delete, .put] {
            for prefix in ["/v1/*", "/v3/*"] {
                routes.add(method, prefix) { [self] request in
                    let apiRequest = Self.apiRequest(request)
                    let response = state.withLock { state in
                        let response = api.handle(apiRequest, registry: &state.registry, now: clock(), writer: state.writer)
                        wake(&state, services: response.changedServices)
                        return response
                    }
                    let answer = HTTPResponse(status: response.status, headers: ["Content-Type": response.contentType], body: response.body)
                    // A write another replica sent here is never sent on: the replicas disagree
                    // about the writer for a moment, and the refusal says to retry.
                    if let writer = response.forwardTo, !request.headers.contains(Self.forwardedField) {
                        return forward(request, to: writer, otherwise: answer)
                    }
                    requests.increment(apiRequest.method, String(response.status))
                    return answer
                }
            }
        }
        var serverConfiguration = HTTPServerConfiguration(host: configuration.host, port: configuration.port)
        // Envoy's DiscoveryRequests carry its whole node description (every extension it has):
        // well over 100 KiB. Registrations have a tighter cap of their own in BridgeAPI.
        serverConfiguration.limits.maxBodyBytes = 1 << 20
        let server = HTTPServer(group: group, configuration: serverConfiguration, routes: routes)
        try await server.start()
        self.server.withLock { $0 = server }
        startSweeper()
    }

    public func shutdown() async {
        sweeping.store(false, ordering: .relaxed)
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.writer.finish() }
        if let server = server.withLock({ $0 }) { await server.shutdown(gracePeriod: .seconds(2)) }
        await forwarder.closeIdleConnections()
    }

    /// Applies an event from outside HTTP (the Kubernetes side) and wakes whoever waits on it.
    public func apply(_ event: RegistryEvent) {
        state.withLock { state in
            let changed = state.registry.apply(event)
            wake(&state, services: changed)
        }
    }

    /// Which replica applies registrations (see `Writer`); only the writer expires legacy hosts,
    /// the others follow what it wrote.
    public func setWriter(_ writer: Writer) {
        state.withLock { $0.writer = writer }
    }

    public var writer: Writer { state.withLock { $0.writer } }

    /// What `/readyz` says.
    public func setReady(_ ready: Bool) {
        state.withLock { $0.ready = ready }
    }

    /// The registry's state, read at each scrape.
    private func declareGauges() {
        metrics.collected("tandem_bridge_services", help: "Services with endpoints from either side.", type: .gauge) { [weak self] in
            [(labels: [], value: Double(self?.registry.services.count ?? 0))]
        }
        metrics.collected("tandem_bridge_registry_version", help: "Bumped by every change of any service.", type: .gauge) { [weak self] in
            [(labels: [], value: Double(self?.registry.version ?? 0))]
        }
        metrics.collected("tandem_bridge_watchers", help: "Long-polls waiting for a change.", type: .gauge) { [weak self] in
            [(labels: [], value: Double(self?.state.withLock { $0.waiters.count } ?? 0))]
        }
        metrics.collected("tandem_bridge_endpoints", help: "Endpoints by origin and health.", type: .gauge,
                          labels: ["origin", "health"]) { [weak self] in
            guard let registry = self?.registry else { return [] }
            var counts: [[String]: Int] = [:]
            for origin in ["kubernetes", "legacy"] {
                for health in [EndpointHealth.healthy, .draining, .unhealthy] { counts[[origin, health.rawValue]] = 0 }
            }
            for service in registry.services {
                for endpoint in registry.endpoints(of: service) {
                    let origin: String
                    if case .kubernetes = endpoint.origin { origin = "kubernetes" } else { origin = "legacy" }
                    counts[[origin, endpoint.health.rawValue], default: 0] += 1
                }
            }
            return counts.map { (labels: $0.key, value: Double($0.value)) }
        }
    }

    /// A copy of the registry as it is now.
    public var registry: Registry { state.withLock { $0.registry } }

    /// `GET /v1/watch/<service>?version=N`: the service's endpoints and version, at once if its
    /// version is not N, else when it changes or the long-poll times out.
    private func watch(_ request: HTTPRequest) -> HTTPResponse {
        let service = String(request.path.dropFirst("/v1/watch/".count))
        let known = Self.query(request)["version"].flatMap { UInt64($0) }
        let headers: HTTPHeaders = ["Content-Type": "application/json", "Cache-Control": "no-store"]
        let (current, body) = state.withLock { ($0.registry.version(of: service), watchBody(service, registry: $0.registry)) }
        // Any other version, older or not, is news: it may come from an earlier run of the bridge.
        guard let known, known == current else {
            return HTTPResponse(status: 200, headers: headers, body: body)
        }
        let deadline = NanoTime.now() + configuration.longPollTimeout
        return HTTPResponse(status: 200, headers: headers) { [self] writer in
            state.withLock { state in
                if state.registry.version(of: service) != known {
                    writer.write(watchBody(service, registry: state.registry))
                    writer.finish()
                } else {
                    state.waiters.append(Waiter(service: service, deadline: deadline, writer: writer))
                }
            }
        }
    }

    /// `{"version":"N","service":…,"endpoints":[…]}`: every endpoint with its health, as
    /// `/v1/services` describes them. Draining ones too, so that a proxy lets them finish what
    /// they have rather than cutting them off.
    private func watchBody(_ service: String, registry: Registry) -> [UInt8] {
        var body = JSONWriter.write(["version": .string(String(registry.version(of: service))), "service": .string(service),
                                     "endpoints": .array(registry.endpoints(of: service).map(BridgeAPI.describe))])
        body.append(UInt8(ascii: "\n"))
        return body
    }

    private func wake(_ state: inout State, services: [String]) {
        guard !services.isEmpty, !state.waiters.isEmpty else { return }
        // One body per changed service, however many wait on it.
        var bodies: [String: [UInt8]] = [:]
        for service in services { bodies[service] = watchBody(service, registry: state.registry) }
        var remaining: [Waiter] = []
        for waiter in state.waiters {
            if let body = bodies[waiter.service] {
                waiter.writer.write(body)
                waiter.writer.finish()
            } else {
                remaining.append(waiter)
            }
        }
        state.waiters = remaining
    }

    /// Every `sweepInterval`: expire silent legacy hosts (waking their watchers) and answer
    /// long-polls whose time is up with what they already know.
    private func startSweeper() {
        sweeping.store(true, ordering: .relaxed)
        let loop = group.next()
        let interval = configuration.sweepInterval
        @Sendable func sweep() {
            guard sweeping.load(ordering: .relaxed) else { return }
            let now = NanoTime.now()
            state.withLock { state in
                let changed = state.writer == .this ? state.registry.apply(.tick(time: clock())) : []
                if !changed.isEmpty { expirations.increment(by: Double(changed.count)) }
                wake(&state, services: changed)
                var remaining: [Waiter] = []
                for waiter in state.waiters {
                    if waiter.deadline < now || !waiter.writer.isOpen {
                        if waiter.writer.isOpen {
                            waiter.writer.write(watchBody(waiter.service, registry: state.registry))
                            waiter.writer.finish()
                        }
                    } else {
                        remaining.append(waiter)
                    }
                }
                state.waiters = remaining
            }
            loop.schedule(after: interval) { sweep() }
        }
        loop.execute { loop.schedule(after: interval) { sweep() } }
    }

    private static func query(_ request: HTTPRequest) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in (request.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            fields[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return fields
    }

    /// Marks a write one replica forwarded to another.
    static let forwardedField = "Tandem-Bridge-Forwarded"

    /// Hands a write to the writer replica and answers with its answer; `otherwise` (a 503 that
    /// says to retry) when the writer cannot be reached in time. Legacy agents then need only
    /// the bridge's Service, not every replica's address.
    private func forward(_ request: HTTPRequest, to writer: String, otherwise refusal: HTTPResponse) -> HTTPResponse {
        .deferred { [self] responder in
            Task {
                var headers: HTTPHeaders = [Self.forwardedField: "1"]
                for name in ["Authorization", "Content-Type"] {
                    if let value = request.headers[name] { headers.add(name, value) }
                }
                let answer: HTTPResponse
                do {
                    let forwarded = try HTTPClientRequest(method: request.method, url: "http://\(writer)\(request.head.target)",
                                                          headers: headers, body: request.body)
                    let response = try await forwarder.send(forwarded)
                    answer = HTTPResponse(status: response.status,
                                          headers: ["Content-Type": response.head.headers["Content-Type"] ?? "application/json"],
                                          body: response.body)
                } catch {
                    answer = refusal
                }
                requests.increment(request.method.rawValue, String(answer.status))
                responder.respond(answer)
            }
        }
    }

    private static func apiRequest(_ request: HTTPRequest) -> APIRequest {
        APIRequest(method: request.method.rawValue, path: String(request.path), query: query(request),
                   authorization: request.headers["Authorization"], contentType: request.headers["Content-Type"],
                   body: request.body)
    }
}
