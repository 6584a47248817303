/// How `tandem proxy` runs: what to proxy, where the admin and health ports are, how many
/// workers, how it stops. Built from flags, a config file, and the environment the injector
/// sets (which alone says what to proxy when there is no config file). Pure.
public struct ProxySettings: Equatable, Sendable {
    /// How the proxy was injected beside its app, which decides what SIGTERM means.
    public enum Lifecycle: String, Equatable, Sendable {
        /// A native sidecar: the kubelet sends SIGTERM only after the app has exited.
        case native
        /// A regular container: SIGTERM comes together with the app's, so the proxy serves until
        /// the app's `tandem supervise` posts `/quitquitquit`.
        case legacy
    }

    public var config: ProxyConfig
    /// Watched for changes and applied in place.
    public var configPath: String?
    public var admin = HostPort(host: "127.0.0.1", port: 15000)
    /// A read-only `/ready` for kubelet probes, on all interfaces (injected pods only).
    public var health: HostPort?
    public var workers = 1
    public var drainSeconds = 5
    /// After SIGTERM, how long to keep accepting everything while endpoint removal propagates.
    public var drainDelaySeconds = 0
    /// nil when not injected (run by hand): SIGTERM then means the app, if any, is gone.
    public var lifecycle: Lifecycle?
    public var logLevel = "info"

    public init(config: ProxyConfig) { self.config = config }

    /// First port of the inbound listeners an injected pod gets: listener i (0, 1, …) takes this
    /// port + i and forwards to the i-th port of `TANDEM_INBOUND_PORTS` on 127.0.0.1.
    public static let inboundBasePort = 15006

    /// What SIGTERM leads to, from these settings.
    public var shutdown: ProxyShutdown.Configuration {
        ProxyShutdown.Configuration(waitsForApp: lifecycle == .legacy, drainDelay: .seconds(drainDelaySeconds),
                                    drainTime: .seconds(drainSeconds))
    }

    /// The injected-pod defaults: `TANDEM_INBOUND_PORTS`, `TANDEM_ADMIN_PORT` (15000),
    /// `TANDEM_HEALTH_PORT` (15021), `TANDEM_LOG_LEVEL`, `TANDEM_DRAIN_SECONDS`,
    /// `TANDEM_DRAIN_DELAY_SECONDS` and `TANDEM_LIFECYCLE`.
    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigError) -> ProxySettings {
        var ports: [Int] = []
        for text in (environment["TANDEM_INBOUND_PORTS"] ?? "").split(separator: ",") {
            guard let port = Int(text.trimmingSpaces), (1...65535).contains(port) else {
                throw ConfigError("TANDEM_INBOUND_PORTS", "\"\(text)\" is not a port")
            }
            ports.append(port)
        }
        var config = ProxyConfig()
        for (index, port) in ports.enumerated() {
            let name = "inbound-\(port)"
            config.clusters.append(.init(name: name, endpoints: [.init(HostPort(host: "127.0.0.1", port: port))]))
            config.listeners.append(.init(name: name, address: HostPort(host: "0.0.0.0", port: inboundBasePort + index),
                                          direction: .inbound, routes: [.init(clusters: [.init(name)])]))
        }
        var settings = ProxySettings(config: config)
        settings.admin.port = try port(environment, "TANDEM_ADMIN_PORT", default: 15000)
        settings.health = HostPort(host: "0.0.0.0", port: try port(environment, "TANDEM_HEALTH_PORT", default: 15021))
        if let level = environment["TANDEM_LOG_LEVEL"], !level.isEmpty {
            guard ["debug", "info", "warn", "error"].contains(level) else {
                throw ConfigError("TANDEM_LOG_LEVEL", "must be one of debug, info, warn, error, not \"\(level)\"")
            }
            settings.logLevel = level
        }
        settings.drainSeconds = try seconds(environment, "TANDEM_DRAIN_SECONDS", default: settings.drainSeconds)
        settings.drainDelaySeconds = try seconds(environment, "TANDEM_DRAIN_DELAY_SECONDS", default: 0)
        if let text = environment["TANDEM_LIFECYCLE"], !text.isEmpty {
            guard let lifecycle = Lifecycle(rawValue: text) else {
                throw ConfigError("TANDEM_LIFECYCLE", "must be native or legacy, not \"\(text)\"")
            }
            settings.lifecycle = lifecycle
        }
        return settings
    }

    private static func seconds(_ environment: [String: String], _ name: String, default fallback: Int) throws(ConfigError) -> Int {
        guard let text = environment[name], !text.isEmpty else { return fallback }
        guard let seconds = Int(text), (0...3600).contains(seconds) else {
            throw ConfigError(name, "must be 0-3600 seconds, not \"\(text)\"")
        }
        return seconds
    }

    private static func port(_ environment: [String: String], _ name: String, default fallback: Int) throws(ConfigError) -> Int {
        guard let text = environment[name], !text.isEmpty else { return fallback }
        guard let port = Int(text), (1...65535).contains(port) else { throw ConfigError(name, "\"\(text)\" is not a port") }
        return port
    }

    /// Where the quick form's one cluster gets its endpoints.
    public enum QuickUpstream: Sendable {
        /// `--to ADDR:PORT[,ADDR:PORT…]`
        case endpoints(String)
        /// `--bridge URL --service NAME`
        case bridge(url: String, service: String)
    }

    /// `--listen ADDR:PORT` and an upstream, `[--tcp]`: one listener, one cluster.
    public static func quick(listen: String, to upstream: QuickUpstream, tcp: Bool) throws(ConfigError) -> ProxyConfig {
        let address: HostPort
        do { address = try HostPort(parsing: listen) } catch { throw error.under("--listen") }
        var config = ProxyConfig(
            listeners: [.init(name: "main", address: address, protocol: tcp ? .tcp : .http, routes: [.init(clusters: [.init("upstream")])])],
            clusters: [.init(name: "upstream", endpoints: [])])
        switch upstream {
        case .endpoints(let targets):
            for target in targets.split(separator: ",") {
                do { config.clusters[0].endpoints.append(.init(try HostPort(parsing: String(target)))) } catch { throw error.under("--to") }
            }
            guard !config.clusters[0].endpoints.isEmpty else { throw ConfigError("--to", "needs at least one ADDR:PORT") }
        case .bridge(let url, let service):
            do { try ConfigReader.validate(bridgeURL: url) } catch { throw ConfigError("--bridge", error.message) }
            do { try ConfigReader.validate(serviceName: service) } catch { throw error.under("--service") }
            config.bridge = url
            config.clusters[0].service = service
        }
        return config
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
