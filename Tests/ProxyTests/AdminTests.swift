import Synchronization
import Testing
import Net
@testable import Proxy

@Suite struct AdminTests {
    /// Counts calls from an admin handler.
    final class Counter: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    func request(_ admin: ProxyAdmin, _ method: HTTPMethod, _ target: String) -> HTTPResponse {
        let head = HTTPRequestHead(method: method, target: target)
        switch admin.routes.match(method: method, path: head.path) {
        case .handler(let handler): return handler(HTTPRequest(head: head))
        case .methodNotAllowed: return .text(405, "")
        case .notFound: return .text(404, "")
        }
    }

    func body(_ response: HTTPResponse) -> String {
        guard case .bytes(let bytes) = response.body else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func envoyConventions() throws {
        let config = httpConfig([HostPort(host: "127.0.0.1", port: 1), HostPort(host: "127.0.0.1", port: 2)])
        let proxy = try ProxyServer(config: config)
        let quits = Counter()
        let admin = ProxyAdmin(proxy: proxy) { _ in quits.add() }
        #expect(request(admin, .get, "/ready").status == 200)
        for path in ["/quitquitquit", "/drain_listeners", "/healthcheck/fail", "/healthcheck/ok"] {
            #expect(request(admin, .get, path).status == 405, "\(path) is POST-only")
        }
        #expect(quits.value == 0)
        #expect(request(admin, .post, "/healthcheck/fail").status == 200)
        #expect(request(admin, .get, "/ready").status == 503)
        #expect(request(admin, .post, "/healthcheck/ok").status == 200)
        #expect(request(admin, .get, "/ready").status == 200)
        let clusters = body(request(admin, .get, "/clusters"))
        #expect(clusters.contains("app::127.0.0.1:2::health_flags::healthy\n"))
        let stats = body(request(admin, .get, "/stats/prometheus"))
        #expect(stats.contains("# TYPE tandem_proxy_downstream_requests_total counter\ntandem_proxy_downstream_requests_total 0\n"))
        #expect(stats.contains("tandem_proxy_cluster_endpoints_healthy{cluster=\"app\"} 2\n"))
        let dump = body(request(admin, .get, "/config_dump"))
        #expect(try ConfigReader.read(dump) == config, "a dump reads back as the same configuration")
        #expect(request(admin, .post, "/drain_listeners?graceful").status == 200)
        #expect(request(admin, .get, "/ready").status == 503, "draining is not ready")
        #expect(request(admin, .post, "/quitquitquit").status == 200)
        #expect(quits.value == 1)
    }

    @Test func adminRefusesNonLoopback() {
        var settings = ProxySettings(config: httpConfig([]))
        settings.admin = HostPort(host: "0.0.0.0", port: 15000)
        #expect(throws: ConfigError("--admin", "the admin port can change the proxy, so it binds loopback only, not 0.0.0.0")) {
            try ProxyService(settings: settings) { _ in }
        }
    }

    @Test func injectedPodDefaultsFromEnvironment() throws {
        let settings = try ProxySettings.fromEnvironment([
            "TANDEM_INBOUND_PORTS": "8080,9090", "TANDEM_ADMIN_PORT": "15000", "TANDEM_HEALTH_PORT": "15021",
            "TANDEM_LOG_LEVEL": "debug", "TANDEM_DRAIN_SECONDS": "20", "TANDEM_DRAIN_DELAY_SECONDS": "5", "TANDEM_LIFECYCLE": "legacy",
        ])
        #expect(settings.config.listeners.map(\.address.description) == ["0.0.0.0:15006", "0.0.0.0:15007"])
        #expect(settings.config.clusters.map { $0.endpoints[0].address.description } == ["127.0.0.1:8080", "127.0.0.1:9090"])
        #expect(settings.admin == HostPort(host: "127.0.0.1", port: 15000))
        #expect(settings.health == HostPort(host: "0.0.0.0", port: 15021))
        #expect(settings.drainSeconds == 20 && settings.logLevel == "debug")
        #expect(settings.shutdown == ProxyShutdown.Configuration(waitsForApp: true, drainDelay: .seconds(5), drainTime: .seconds(20)))
        #expect(try ProxySettings.fromEnvironment(["TANDEM_LIFECYCLE": "native"]).shutdown
            == ProxyShutdown.Configuration(waitsForApp: false, drainDelay: .zero, drainTime: .seconds(5)))
        #expect(throws: ConfigError("TANDEM_LIFECYCLE", "must be native or legacy, not \"auto\"")) {
            try ProxySettings.fromEnvironment(["TANDEM_LIFECYCLE": "auto"])
        }
        #expect(throws: ConfigError("TANDEM_DRAIN_DELAY_SECONDS", "must be 0-3600 seconds, not \"soon\"")) {
            try ProxySettings.fromEnvironment(["TANDEM_DRAIN_DELAY_SECONDS": "soon"])
        }
        #expect(throws: ConfigError("TANDEM_INBOUND_PORTS", "\"http\" is not a port")) {
            try ProxySettings.fromEnvironment(["TANDEM_INBOUND_PORTS": "http"])
        }
        #expect(throws: ConfigError("TANDEM_DRAIN_SECONDS", "must be 0-3600 seconds, not \"-1\"")) {
            try ProxySettings.fromEnvironment(["TANDEM_DRAIN_SECONDS": "-1"])
        }
        let quick = try ProxySettings.quick(listen: "127.0.0.1:0", to: .endpoints("127.0.0.1:1,[::1]:2"), tcp: true)
        #expect(quick.listeners[0].protocol == .tcp && quick.clusters[0].endpoints.count == 2)
        #expect(throws: ConfigError("--to", "\"x\" is not ADDR:PORT")) { try ProxySettings.quick(listen: "127.0.0.1:0", to: .endpoints("x"), tcp: false) }
        let bridged = try ProxySettings.quick(listen: "127.0.0.1:0", to: .bridge(url: "http://10.0.0.9:8090", service: "web"), tcp: false)
        #expect(bridged.bridge == "http://10.0.0.9:8090" && bridged.clusters[0].service == "web" && bridged.clusters[0].endpoints.isEmpty)
        #expect(throws: ConfigError("--service", "\"Web\" must be lower-case letters, digits, '-' and '.'")) {
            try ProxySettings.quick(listen: "127.0.0.1:0", to: .bridge(url: "http://10.0.0.9:8090", service: "Web"), tcp: false)
        }
        #expect(throws: ConfigError("--bridge", "unsupported URL \"10.0.0.9\": want http:// or https://")) {
            try ProxySettings.quick(listen: "127.0.0.1:0", to: .bridge(url: "10.0.0.9", service: "web"), tcp: false)
        }
    }

    @Test func healthPortServesOnlyReady() throws {
        let proxy = try ProxyServer(config: httpConfig([]))
        let admin = ProxyAdmin(proxy: proxy) { _ in }
        let routes = admin.healthRoutes
        if case .handler = routes.match(method: .get, path: "/ready") {} else { Issue.record("/ready missing") }
        if case .notFound = routes.match(method: .post, path: "/quitquitquit") {} else { Issue.record("health port must not mutate") }
    }
}
