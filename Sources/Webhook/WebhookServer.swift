import Document
import Glibc
import Injection
import Kubernetes
import Net
import Synchronization
import Telemetry

/// How the webhook listens and what it serves.
public struct WebhookOptions: Sendable {
    public var host: String
    public var port: Int
    public var certificateFile: String
    public var keyFile: String
    public var configPath: String?
    /// How often the config file (and the certificate, on the next handshake) is checked.
    public var reloadInterval: Duration
    /// Resolves lifecycle `auto` at start (a `ClusterKeeper` may update it later through
    /// `WebhookServer.apiServerVersion`); nil when unknown (native is assumed).
    public var kubeVersion: KubernetesVersion?
    public var threads: Int
    /// After SIGTERM, how long `/readyz` fails while reviews are still served: the apiserver
    /// keeps calling a terminating replica until its endpoint removal reaches it.
    public var shutdownDelay: Duration

    public init(host: String = "0.0.0.0", port: Int = 9443, certificateFile: String, keyFile: String,
                configPath: String? = nil, reloadInterval: Duration = .seconds(2),
                kubeVersion: KubernetesVersion? = nil, threads: Int = 2, shutdownDelay: Duration = .seconds(5)) {
        self.host = host
        self.port = port
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.configPath = configPath
        self.reloadInterval = reloadInterval
        self.kubeVersion = kubeVersion
        self.threads = threads
        self.shutdownDelay = shutdownDelay
    }
}

/// The HTTPS shell around `Admission.review`: routes, limits, reloads, logs and metrics.
///
/// Routes: `POST /inject` (AdmissionReview v1), `GET /healthz`, `GET /readyz`, `GET /metrics`.
/// It never decides anything itself; every decision comes from the pure admission function with
/// the injector of the moment, so the kill switch and config changes apply to the next request.
public final class WebhookServer: Sendable {
    public let options: WebhookOptions
    public let metrics: WebhookMetrics
    public let config: ConfigWatcher
    public let apiServerVersion: APIServerVersion
    private let logger: Logger
    private let tls: TLSContext
    private let group: EventLoopGroup
    private let server: HTTPServer
    private let stopping = StoppingFlag()

    /// Shared with the `/readyz` route, which is made before `self` exists.
    private final class StoppingFlag: Sendable {
        let started = Atomic<Bool>(false)
    }

    /// Timeouts sized for the apiserver, which sends a whole review at once and waits at most
    /// 30 s: a client slower than this is not the apiserver.
    static func serverConfiguration(_ options: WebhookOptions, tls: TLSContext?) -> HTTPServerConfiguration {
        HTTPServerConfiguration(
            host: options.host, port: options.port, tls: tls,
            limits: HTTPLimits(maxBodyBytes: Admission.maxBodyBytes),
            headerReadTimeout: .seconds(5), idleTimeout: .seconds(90), bodyReadTimeout: .seconds(10),
            writeTimeout: .seconds(10))
    }

    public init(options: WebhookOptions, logger: Logger, metrics: WebhookMetrics) throws {
        self.options = options
        self.logger = logger
        self.metrics = metrics
        config = try ConfigWatcher(path: options.configPath, logger: logger, metrics: metrics)
        apiServerVersion = APIServerVersion(options.kubeVersion)
        var tlsConfiguration = TLSConfiguration.server(certificateFile: options.certificateFile, keyFile: options.keyFile,
                                                       alpn: ["http/1.1"], reloadCheckInterval: options.reloadInterval)
        // A few API servers keep their connections busy: freeing the buffers after every request
        // and allocating them for the next cost 0.5% of its instructions. Idle, a connection
        // keeps them: about 19 KB more resident (400 idle connections: +7.6 MB).
        tlsConfiguration.keepsIdleBuffers = true
        tls = try TLSContext(tlsConfiguration)
        group = try EventLoopGroup(threads: options.threads)
        var routes = HTTPRoutes()
        let handler = AdmissionRoute(config: config, apiServerVersion: apiServerVersion, logger: logger, metrics: metrics)
        routes.add(.post, "/inject") { request in handler.respond(to: request) }
        routes.add(.get, "/healthz") { _ in .text(200, "ok\n") }
        let stopping = self.stopping
        routes.add(.get, "/readyz") { _ in
            stopping.started.load(ordering: .relaxed) ? .text(503, "shutting down\n") : .text(200, "ok\n")
        }
        let tls = self.tls
        routes.add(.get, "/metrics") { _ in
            metrics.certificateReloads.set(Double(tls.reloadStatus.reloads))
            return HTTPResponse(status: 200, headers: ["Content-Type": MetricsRegistry.contentType],
                                body: Array(metrics.registry.exposition().utf8))
        }
        server = HTTPServer(group: group, configuration: Self.serverConfiguration(options, tls: tls), routes: routes)
    }

    public var port: Int { server.port }

    /// Binds and serves; returns once listening.
    public func start() async throws {
        try await server.start()
        logger.info("webhook listening", [
            "address": .string("\(options.host):\(server.port)"),
            "kubernetesVersion": options.kubeVersion.map { .string($0.description) } ?? .null,
            "injectionEnabled": .bool(config.injector.config.injection.enabled),
        ])
    }

    /// Serves until cancelled, polling the config file; then fails readiness, keeps serving for
    /// `shutdownDelay`, drains and stops.
    public func run() async throws {
        try await start()
        await config.watch(every: options.reloadInterval)
        stopping.started.store(true, ordering: .relaxed)
        logger.info("shutting down: readiness fails, reviews are served meanwhile",
                    ["delaySeconds": .number(String(Double(options.shutdownDelay.components.seconds)))])
        // The caller's task is cancelled by now; the wait must not be.
        let delay = options.shutdownDelay
        await Task.detached { try? await Task.sleep(for: delay) }.value
        await shutdown()
    }

    public func shutdown() async {
        await server.shutdown(gracePeriod: .seconds(5))
        group.shutdown()
        logger.info("webhook stopped")
    }
}

/// `POST /inject`: the admission function plus its log line and counters.
struct AdmissionRoute: Sendable {
    let config: ConfigWatcher
    let apiServerVersion: APIServerVersion
    let logger: Logger
    let metrics: WebhookMetrics

    /// Every answer's headers, made once with the route rather than per request (a static's
    /// every read checks that it was initialised).
    private let jsonHeaders: HTTPHeaders = ["Content-Type": "application/json"]

    func respond(to request: HTTPRequest) -> HTTPResponse {
        // The monotonic clock read directly: ContinuousClock's reads and 128-bit Durations cost
        // twice as much, for every admission.
        let start = NanoTime.now()
        let result = request.headers.withFirstValue(of: "Content-Type") { contentType in
            Admission.review(body: request.body, contentType: contentType,
                             injector: config.injector, kubeVersion: apiServerVersion.current)
        }
        let seconds = Double(NanoTime.now().nanoseconds - start.nanoseconds) / 1e9
        count(result, seconds: seconds)
        let level: Logger.Level = switch result.outcome {
        case .patched, .allowed: .info
        case .denied, .badRequest: .warn
        }
        let response = HTTPResponse(status: result.status, headers: jsonHeaders, body: result.body)
        // The fields cost more than the check: build them only for a line that is written.
        guard level >= logger.level else { return response }
        logger.log(level, "admission", [
            "uid": result.uid.map(JSON.string) ?? .null,
            "namespace": result.namespace.map(JSON.string) ?? .null,
            "name": result.name.map(JSON.string) ?? .null,
            "operation": result.operation.map(JSON.string) ?? .null,
            "dryRun": .bool(result.dryRun),
            "outcome": .string(result.outcome.rawValue),
            "reason": .string(result.reason),
            "patchOperations": .integer(result.patchOperations),
            "durationMicroseconds": .integer(Int(seconds * 1e6)),
            "warnings": .array(result.warnings.map(JSON.string)),
            "message": result.message.map(JSON.string) ?? .null,
            "peer": request.peer.map { .string($0.ip) } ?? .null,
        ])
        return response
    }

    /// The two metric updates, kept out of `respond`: there, their label lists were not made on
    /// the stack (see `MetricsRegistry`), and each cost an allocation.
    @inline(never)
    private func count(_ result: AdmissionResult, seconds: Double) {
        metrics.admissions.increment(result.outcome.rawValue, result.reason)
        metrics.latency.observe(seconds, result.outcome.rawValue)
    }
}
