import Synchronization
import Document
import Net
import Telemetry

/// One admin endpoint, as in Envoy's admin table: mutating ones answer only POST (GET gets 405).
public struct AdminEndpoint: Sendable {
    public let path: String
    public let help: String
    public let mutating: Bool
    public let handler: @Sendable (HTTPRequest) -> HTTPResponse
}

/// The admin surface (Envoy conventions) over a running proxy. Callable in-process through
/// `respond`, and served on loopback only by `ProxyService`.
public final class ProxyAdmin: Sendable {
    public let proxy: ProxyServer
    private let healthFailed = Atomic<Bool>(false)
    private let onQuit: @Sendable (ProxyShutdown.Event) -> Void

    /// `onQuit` runs for `POST /quitquitquit` with what it says (see `ProxyShutdown.Event`): the
    /// owner drains the proxy and exits.
    public init(proxy: ProxyServer, onQuit: @escaping @Sendable (ProxyShutdown.Event) -> Void) {
        self.proxy = proxy
        self.onQuit = onQuit
    }

    /// Ready means: serving, not draining, and not told to fail health checks.
    public var isReady: Bool { !proxy.isDraining && !healthFailed.load(ordering: .relaxed) }

    /// Fails readiness, as `POST /healthcheck/fail` and the start of a SIGTERM drain do.
    /// `.appExited` when the query names the app and the apps to wait for, else `.quitRequested`.
    static func quitEvent(query: String) -> ProxyShutdown.Event {
        let fields = URLQuery.decode(Substring(query)) ?? []
        guard let app = fields.first(where: { $0.0 == "app" })?.1, !app.isEmpty,
              let list = fields.first(where: { $0.0 == "apps" })?.1 else { return .quitRequested }
        let apps = Set(list.split(separator: ",").map(String.init)).union([app])
        return .appExited(app, apps: apps)
    }

    public func failHealthChecks() { healthFailed.store(true, ordering: .relaxed) }

    public var endpoints: [AdminEndpoint] {
        [
            AdminEndpoint(path: "/", help: "This list.", mutating: false) { [unowned self] _ in
                .text(200, endpoints.map { "\($0.mutating ? "POST" : "GET ") \($0.path): \($0.help)" }.joined(separator: "\n") + "\n")
            },
            AdminEndpoint(path: "/ready", help: "200 LIVE when serving, 503 DRAINING once draining or failed.", mutating: false) { [unowned self] _ in
                readiness()
            },
            AdminEndpoint(path: "/stats/prometheus", help: "Statistics in Prometheus text format.", mutating: false) { [unowned self] _ in
                var response = HTTPResponse.text(200, proxy.metrics.exposition())
                response.headers.set("Content-Type", MetricsRegistry.contentType)
                return response
            },
            AdminEndpoint(path: "/clusters", help: "Every endpoint of every cluster with its state.", mutating: false) { [unowned self] _ in
                .text(200, clustersText())
            },
            AdminEndpoint(path: "/config_dump", help: "The configuration in force, as JSON.", mutating: false) { [unowned self] _ in
                var response = HTTPResponse(status: 200, body: JSONWriter.write(ConfigWriter.json(proxy.config), indent: 2) + [0x0A])
                response.headers.set("Content-Type", "application/json")
                return response
            },
            AdminEndpoint(path: "/quitquitquit",
                          help: "The app has exited: drain (bounded), then exit; with ?app=NAME&apps=A,B once every one of A, B has.",
                          mutating: true) { [unowned self] request in
                onQuit(Self.quitEvent(query: String(request.query ?? "")))
                return .text(200, "OK\n")
            },
            AdminEndpoint(path: "/drain_listeners",
                          help: "Stop accepting; ?graceful lets open connections finish within the drain time; ?inboundonly spares outbound listeners.",
                          mutating: true) { [unowned self] request in
                let flags = (request.query ?? "").split(separator: "&").map { $0.split(separator: "=").first ?? "" }
                proxy.drainListeners(graceful: flags.contains("graceful"), inboundOnly: flags.contains("inboundonly"))
                return .text(200, "OK\n")
            },
            AdminEndpoint(path: "/healthcheck/fail", help: "Fail readiness from now on.", mutating: true) { [unowned self] _ in
                failHealthChecks()
                return .text(200, "OK\n")
            },
            AdminEndpoint(path: "/healthcheck/ok", help: "Pass readiness again (unless draining).", mutating: true) { [unowned self] _ in
                healthFailed.store(false, ordering: .relaxed)
                return .text(200, "OK\n")
            },
        ]
    }

    func readiness() -> HTTPResponse {
        isReady ? .text(200, "LIVE\n") : .text(503, "DRAINING\n")
    }

    /// The route table for Net's HTTP server.
    public var routes: HTTPRoutes {
        var routes = HTTPRoutes()
        for endpoint in endpoints { routes.add(endpoint.mutating ? .post : .get, endpoint.path, endpoint.handler) }
        return routes
    }

    /// Only `/ready`, for the kubelet on all interfaces: nothing there can change the proxy.
    public var healthRoutes: HTTPRoutes {
        var routes = HTTPRoutes()
        routes.add(.get, "/ready") { [unowned self] _ in readiness() }
        return routes
    }

    /// Envoy's text format: `cluster::address::field::value`, one line per fact.
    func clustersText() -> String {
        var text = ""
        for cluster in proxy.clusterSnapshots() {
            for member in cluster.members {
                let prefix = "\(cluster.name)::\(member.address)::"
                var flags: [String] = []
                if member.isEjected(at: NanoTime.now().nanoseconds) { flags.append("/failed_outlier_check") }
                if !member.healthy { flags.append("/failed_active_hc") }
                if member.terminating { flags.append("/pending_dynamic_removal") }
                text += prefix + "rq_active::\(member.active)\n"
                text += prefix + "weight::\(member.weight)\n"
                text += prefix + "ejections::\(member.ejections)\n"
                text += prefix + "health_flags::\(flags.isEmpty ? "healthy" : flags.joined(separator: "|"))\n"
            }
        }
        return text
    }
}

/// The configuration as JSON, in the shape `ConfigReader` reads (so a dump can be fed back).
public enum ConfigWriter {
    public static func json(_ config: ProxyConfig) -> JSON {
        let listeners: [JSON] = config.listeners.map { listener in
            .object(JSONObject([
                ("name", .string(listener.name)), ("address", .string(listener.address.description)),
                ("direction", .string(listener.direction.rawValue)), ("protocol", .string(listener.protocol.rawValue)),
                ("idleTimeoutMs", .integer(listener.idleTimeoutMilliseconds)),
                ("routes", .array(listener.routes.map { route in
                    var members: [(String, JSON)] = []
                    if let host = route.host { members.append(("host", .string(host))) }
                    members.append(("prefix", .string(route.pathPrefix)))
                    members.append(("timeoutMs", .integer(route.timeoutMilliseconds)))
                    members.append(("clusters", .array(route.clusters.map {
                        .object(JSONObject([("name", .string($0.cluster)), ("weight", .integer($0.weight))]))
                    })))
                    return .object(JSONObject(members))
                })),
            ]))
        }
        let clusters: [JSON] = config.clusters.map { cluster in
            var members: [(String, JSON)] = [
                ("name", .string(cluster.name)), ("balancing", .string(cluster.balancing.rawValue)),
                ("connectTimeoutMs", .integer(cluster.connectTimeoutMilliseconds)),
            ]
            // A bridged cluster's endpoints are the bridge's, not configuration: /clusters lists them.
            if let service = cluster.service {
                members.append(("service", .string(service)))
            } else {
                members.append(("endpoints", .array(cluster.endpoints.map {
                    .object(JSONObject([("address", .string($0.address.description)), ("weight", .integer($0.weight)),
                                        ("terminating", .bool($0.terminating))]))
                })))
            }
            members += [
                ("limits", .object(JSONObject([("maxConnections", .integer(cluster.limits.maxConnections)),
                                               ("maxPendingRequests", .integer(cluster.limits.maxPendingRequests)),
                                               ("maxRequests", .integer(cluster.limits.maxRequests))]))),
                ("retries", .object(JSONObject([("attempts", .integer(cluster.retries.attempts)),
                                                ("budgetPercent", .integer(cluster.retries.budgetPercent))]))),
                ("outlier", .object(JSONObject([("consecutive5xx", .integer(cluster.outlier.consecutive5xx)),
                                                ("consecutiveConnectFailures", .integer(cluster.outlier.consecutiveConnectFailures)),
                                                ("baseEjectionMs", .integer(cluster.outlier.baseEjectionMilliseconds)),
                                                ("maxEjectionPercent", .integer(cluster.outlier.maxEjectionPercent))]))),
            ]
            if let check = cluster.healthCheck {
                var fields: [(String, JSON)] = []
                if let path = check.httpPath { fields.append(("httpPath", .string(path))) }
                fields += [("intervalMs", .integer(check.intervalMilliseconds)), ("timeoutMs", .integer(check.timeoutMilliseconds)),
                           ("unhealthyThreshold", .integer(check.unhealthyThreshold)), ("healthyThreshold", .integer(check.healthyThreshold))]
                members.append(("healthCheck", .object(JSONObject(fields))))
            }
            return .object(JSONObject(members))
        }
        var members: [(String, JSON)] = []
        if let bridge = config.bridge { members.append(("bridge", .string(bridge))) }
        members += [("listeners", .array(listeners)), ("clusters", .array(clusters))]
        return .object(JSONObject(members))
    }
}
