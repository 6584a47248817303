import Document

/// An address to bind or connect to: an IP literal and a port.
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `ADDR:PORT` or `[IPv6]:PORT`; the address must be an IP literal so nothing blocks on DNS.
    public init(parsing text: String) throws(ConfigError) {
        var host = Substring(text)
        var portText: Substring
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]"), host[host.index(after: close)...].hasPrefix(":") else {
                throw ConfigError("", "\"\(text)\" is not ADDR:PORT")
            }
            portText = host[host.index(close, offsetBy: 2)...]
            host = host[host.index(after: host.startIndex)..<close]
        } else {
            guard let colon = host.lastIndex(of: ":") else { throw ConfigError("", "\"\(text)\" is not ADDR:PORT") }
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
            if host.contains(":") { throw ConfigError("", "\"\(text)\": write IPv6 addresses as [ADDR]:PORT") }
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigError("", "\"\(text)\": port must be 0-65535")
        }
        guard IPAddress(host) != nil else { throw ConfigError("", "\"\(text)\": \"\(host)\" is not an IP address") }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    var isLoopback: Bool { IPAddress(host)?.isLoopback ?? false }
}

/// A configuration value that does not fit: where (`clusters[1].endpoints[0].weight`) and why.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
    func under(_ prefix: String) -> ConfigError {
        ConfigError(path.isEmpty ? prefix : prefix + (path.hasPrefix("[") ? "" : ".") + path, message)
    }
}

/// Everything the proxy does, as a plain value: compared, diffed and applied in place.
public struct ProxyConfig: Equatable, Sendable {
    public var listeners: [Listener]
    public var clusters: [Cluster]
    /// The discovery bridge (`http[s]://host[:port]`) that clusters naming a `service` follow.
    public var bridge: String?

    public init(listeners: [Listener] = [], clusters: [Cluster] = [], bridge: String? = nil) {
        self.listeners = listeners
        self.clusters = clusters
        self.bridge = bridge
    }

    public enum Direction: String, Sendable, Equatable { case inbound, outbound }
    public enum ListenerProtocol: String, Sendable, Equatable { case http, tcp }

    public struct Listener: Equatable, Sendable {
        public var name: String
        public var address: HostPort
        public var direction: Direction
        public var `protocol`: ListenerProtocol
        /// HTTP: matched in order, first match wins. TCP: exactly one route, with no host or prefix.
        public var routes: [Route]
        /// Idle keep-alive connections from clients are closed after this long.
        public var idleTimeoutMilliseconds: Int

        public init(name: String, address: HostPort, direction: Direction = .inbound, protocol: ListenerProtocol = .http,
                    routes: [Route], idleTimeoutMilliseconds: Int = 60_000) {
            self.name = name
            self.address = address
            self.direction = direction
            self.protocol = `protocol`
            self.routes = routes
            self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        }
    }

    public struct Route: Equatable, Sendable {
        /// Lower-case host without port; nil matches any. `*.example.com` matches subdomains.
        public var host: String?
        public var pathPrefix: String
        public var clusters: [WeightedCluster]
        /// Whole request, from its head to the end of the response.
        public var timeoutMilliseconds: Int

        public init(host: String? = nil, pathPrefix: String = "/", clusters: [WeightedCluster], timeoutMilliseconds: Int = 15_000) {
            self.host = host
            self.pathPrefix = pathPrefix
            self.clusters = clusters
            self.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    public struct WeightedCluster: Equatable, Sendable {
        public var cluster: String
        public var weight: Int
        public init(_ cluster: String, weight: Int = 1) {
            self.cluster = cluster
            self.weight = weight
        }
    }

    public enum Balancing: String, Sendable, Equatable {
        case roundRobin = "round_robin"
        case leastRequest = "least_request"
    }

    public struct Endpoint: Equatable, Sendable {
        public var address: HostPort
        public var weight: Int
        /// EndpointSlice `terminating`: keeps its open requests, gets no new ones.
        public var terminating: Bool
        public init(_ address: HostPort, weight: Int = 1, terminating: Bool = false) {
            self.address = address
            self.weight = weight
            self.terminating = terminating
        }
    }

    public struct Cluster: Equatable, Sendable {
        public var name: String
        public var balancing: Balancing
        /// Static, or (with `service`) the bridge's last answer, which the proxy keeps across
        /// reloads and while the bridge cannot be reached.
        public var endpoints: [Endpoint]
        /// The bridge service this cluster's endpoints come from; nil for static endpoints.
        public var service: String?
        public var connectTimeoutMilliseconds: Int
        public var limits: Limits
        public var retries: Retries
        public var outlier: Outlier
        public var healthCheck: HealthCheck?

        public init(name: String, balancing: Balancing = .roundRobin, endpoints: [Endpoint],
                    connectTimeoutMilliseconds: Int = 1_000, limits: Limits = Limits(), retries: Retries = Retries(),
                    outlier: Outlier = Outlier(), healthCheck: HealthCheck? = nil, service: String? = nil) {
            self.name = name
            self.balancing = balancing
            self.endpoints = endpoints
            self.service = service
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
            self.limits = limits
            self.retries = retries
            self.outlier = outlier
            self.healthCheck = healthCheck
        }
    }

    /// Circuit breaking: past these, new requests fail fast with 503 instead of queueing.
    public struct Limits: Equatable, Sendable {
        public var maxConnections = 1024
        public var maxPendingRequests = 1024
        public var maxRequests = 1024
        public init() {}
    }

    /// Failed connects, and idempotent requests whose connection failed before any response,
    /// are tried again on another endpoint, within a budget so retries cannot multiply load.
    public struct Retries: Equatable, Sendable {
        public var attempts = 2
        /// Retries in flight may be at most this share of active requests (with a floor of 3).
        public var budgetPercent = 20
        public init() {}
    }

    /// Passive outlier ejection, Envoy's defaults.
    public struct Outlier: Equatable, Sendable {
        public var consecutive5xx = 5
        public var consecutiveConnectFailures = 5
        public var baseEjectionMilliseconds = 30_000
        public var maxEjectionPercent = 10
        public init() {}
    }

    public struct HealthCheck: Equatable, Sendable {
        /// nil: a TCP connect check; else an HTTP GET of this path that must answer 2xx.
        public var httpPath: String?
        public var intervalMilliseconds = 5_000
        public var timeoutMilliseconds = 1_000
        public var unhealthyThreshold = 2
        public var healthyThreshold = 1
        public init(httpPath: String? = nil) { self.httpPath = httpPath }
    }

    public func cluster(named name: String) -> Cluster? { clusters.first { $0.name == name } }

    /// Where a bridged cluster's endpoints come from.
    public struct BridgeService: Hashable, Sendable {
        public var bridge: String
        public var service: String
        public init(bridge: String, service: String) {
            self.bridge = bridge
            self.service = service
        }
    }

    /// The bridge service `cluster` follows, or nil when its endpoints are static.
    public func bridgeService(of cluster: Cluster) -> BridgeService? {
        guard let bridge, let service = cluster.service else { return nil }
        return BridgeService(bridge: bridge, service: service)
    }
}
