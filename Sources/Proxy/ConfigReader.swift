import Document
import Net

/// Reads `ProxyConfig` from YAML or JSON text and validates it, naming the exact field at fault.
///
/// ```yaml
/// bridge: http://tandem-bridge.tandem-system:8090   # optional: for clusters that name a service
/// listeners:
///   - name: inbound
///     address: 0.0.0.0:15006
///     direction: inbound          # or outbound
///     protocol: http              # or tcp
///     idleTimeoutMs: 60000
///     routes:
///       - host: api.example.com   # optional
///         prefix: /v1             # default /
///         timeoutMs: 15000
///         clusters: [{name: blue, weight: 90}, {name: green, weight: 10}]   # or cluster: app
/// clusters:
///   - name: app
///     balancing: least_request    # or round_robin
///     connectTimeoutMs: 1000
///     endpoints: [{address: 127.0.0.1:8080, weight: 1, terminating: false}]
///     limits: {maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024}
///     retries: {attempts: 2, budgetPercent: 20}
///     outlier: {consecutive5xx: 5, consecutiveConnectFailures: 5, baseEjectionMs: 30000, maxEjectionPercent: 10}
///     healthCheck: {httpPath: /healthz, intervalMs: 5000, timeoutMs: 1000, unhealthyThreshold: 2, healthyThreshold: 1}
///   - name: checkout
///     service: checkout           # endpoints from the bridge instead of a list: followed by a
///                                 # long-poll, applied in place, kept while the bridge is away
/// ```
public enum ConfigReader {
    /// Parses YAML (a superset of JSON) and validates.
    public static func read(_ text: String) throws(ConfigError) -> ProxyConfig {
        let documents: [YAMLDocument]
        do { documents = try YAMLReader.read(text) } catch { throw ConfigError("", "not YAML: \(error)") }
        guard documents.count == 1 else { throw ConfigError("", "expected one YAML document, found \(documents.count)") }
        return try decode(documents[0].value)
    }

    public static func decode(_ json: JSON) throws(ConfigError) -> ProxyConfig {
        var reader = try ObjectReader(json, path: "")
        var config = ProxyConfig()
        config.bridge = try reader.optionalString("bridge").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        config.clusters = try reader.list("clusters", required: false) { (cluster: inout ObjectReader) throws(ConfigError) in
            try readCluster(&cluster)
        }
        config.listeners = try reader.list("listeners", required: true) { (listener: inout ObjectReader) throws(ConfigError) in
            try readListener(&listener)
        }
        try reader.finish()
        try validate(config)
        return config
    }

    /// Checks what single fields cannot: unique names and addresses, routes that name real clusters.
    public static func validate(_ config: ProxyConfig) throws(ConfigError) {
        if let bridge = config.bridge { try validate(bridgeURL: bridge) }
        var clusterNames = Set<String>()
        for (index, cluster) in config.clusters.enumerated() {
            if !clusterNames.insert(cluster.name).inserted {
                throw ConfigError("clusters[\(index)].name", "duplicate cluster \"\(cluster.name)\"")
            }
            if let service = cluster.service {
                do { try validate(serviceName: service) } catch { throw error.under("clusters[\(index)].service") }
                if config.bridge == nil {
                    throw ConfigError("clusters[\(index)].service", "needs a bridge: set the top-level bridge URL")
                }
            }
        }
        var listenerNames = Set<String>(), addresses = Set<HostPort>()
        for (index, listener) in config.listeners.enumerated() {
            let path = "listeners[\(index)]"
            if !listenerNames.insert(listener.name).inserted {
                throw ConfigError(path + ".name", "duplicate listener \"\(listener.name)\"")
            }
            if listener.address.port != 0 && !addresses.insert(listener.address).inserted {
                throw ConfigError(path + ".address", "\(listener.address) is already used by another listener")
            }
            if listener.routes.isEmpty { throw ConfigError(path + ".routes", "needs at least one route") }
            if listener.protocol == .tcp {
                if listener.routes.count != 1 { throw ConfigError(path + ".routes", "a tcp listener has exactly one route") }
                if listener.routes[0].host != nil || listener.routes[0].pathPrefix != "/" {
                    throw ConfigError(path + ".routes[0]", "a tcp listener cannot match host or prefix")
                }
            }
            for (routeIndex, route) in listener.routes.enumerated() {
                for (clusterIndex, weighted) in route.clusters.enumerated() where !clusterNames.contains(weighted.cluster) {
                    throw ConfigError(path + ".routes[\(routeIndex)].clusters[\(clusterIndex)]",
                                      "unknown cluster \"\(weighted.cluster)\"")
                }
            }
        }
    }

    /// `http[s]://host[:port][/prefix]`: the watch path is appended to it.
    static func validate(bridgeURL: String) throws(ConfigError) {
        let request: HTTPClientRequest
        do { request = try HTTPClientRequest(url: bridgeURL) } catch { throw ConfigError("bridge", error.description) }
        guard !request.target.contains("?"), !bridgeURL.contains("#") else {
            throw ConfigError("bridge", "\"\(bridgeURL)\" must not have a query or fragment")
        }
    }

    /// The bridge's own rule for service names, which also keeps them safe in a URL path.
    static func validate(serviceName: String) throws(ConfigError) {
        let valid = !serviceName.isEmpty && serviceName.utf8.count <= 253 && serviceName.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        guard valid else { throw ConfigError("", "\"\(serviceName)\" must be lower-case letters, digits, '-' and '.'") }
    }

    private static func readListener(_ reader: inout ObjectReader) throws(ConfigError) -> ProxyConfig.Listener {
        let name = try reader.string("name")
        let address = try reader.address("address")
        let direction = try reader.choice("direction", default: ProxyConfig.Direction.inbound)
        let proto = try reader.choice("protocol", default: ProxyConfig.ListenerProtocol.http)
        let idle = try reader.integer("idleTimeoutMs", default: 60_000, in: 1...86_400_000)
        let routes = try reader.list("routes", required: true) { (route: inout ObjectReader) throws(ConfigError) in
            try readRoute(&route)
        }
        return ProxyConfig.Listener(name: name, address: address, direction: direction, protocol: proto,
                                    routes: routes, idleTimeoutMilliseconds: idle)
    }

    private static func readRoute(_ reader: inout ObjectReader) throws(ConfigError) -> ProxyConfig.Route {
        let host = try reader.optionalString("host").map { $0.lowercased() }
        let prefix = try reader.optionalString("prefix") ?? "/"
        guard prefix.hasPrefix("/") else { throw ConfigError(reader.path + ".prefix", "must start with /") }
        let timeout = try reader.integer("timeoutMs", default: 15_000, in: 1...86_400_000)
        let single = try reader.optionalString("cluster")
        let weighted = try reader.list("clusters", required: false) { (item: inout ObjectReader) throws(ConfigError) in
            ProxyConfig.WeightedCluster(try item.string("name"), weight: try item.integer("weight", default: 1, in: 0...1_000_000))
        }
        switch (single, weighted.isEmpty) {
        case (let name?, true):
            return ProxyConfig.Route(host: host, pathPrefix: prefix, clusters: [.init(name)], timeoutMilliseconds: timeout)
        case (nil, false):
            guard weighted.contains(where: { $0.weight > 0 }) else {
                throw ConfigError(reader.path + ".clusters", "at least one weight must be above 0")
            }
            return ProxyConfig.Route(host: host, pathPrefix: prefix, clusters: weighted, timeoutMilliseconds: timeout)
        default:
            throw ConfigError(reader.path, "needs exactly one of cluster or clusters")
        }
    }

    private static func readCluster(_ reader: inout ObjectReader) throws(ConfigError) -> ProxyConfig.Cluster {
        var cluster = ProxyConfig.Cluster(name: try reader.string("name"), endpoints: [])
        cluster.balancing = try reader.choice("balancing", default: .roundRobin)
        cluster.connectTimeoutMilliseconds = try reader.integer("connectTimeoutMs", default: 1_000, in: 1...600_000)
        cluster.endpoints = try reader.list("endpoints", required: false) { (item: inout ObjectReader) throws(ConfigError) in
            ProxyConfig.Endpoint(try item.address("address"), weight: try item.integer("weight", default: 1, in: 1...1_000_000),
                                 terminating: try item.bool("terminating", default: false))
        }
        cluster.service = try reader.optionalString("service")
        if cluster.service != nil && !cluster.endpoints.isEmpty {
            throw ConfigError(reader.path, "takes endpoints from its list or from a bridge service, not both")
        }
        if var limits = try reader.object("limits") {
            cluster.limits.maxConnections = try limits.integer("maxConnections", default: 1024, in: 1...1_000_000)
            cluster.limits.maxPendingRequests = try limits.integer("maxPendingRequests", default: 1024, in: 0...1_000_000)
            cluster.limits.maxRequests = try limits.integer("maxRequests", default: 1024, in: 1...1_000_000)
            try limits.finish()
        }
        if var retries = try reader.object("retries") {
            cluster.retries.attempts = try retries.integer("attempts", default: 2, in: 0...10)
            cluster.retries.budgetPercent = try retries.integer("budgetPercent", default: 20, in: 0...100)
            try retries.finish()
        }
        if var outlier = try reader.object("outlier") {
            cluster.outlier.consecutive5xx = try outlier.integer("consecutive5xx", default: 5, in: 0...1000)
            cluster.outlier.consecutiveConnectFailures = try outlier.integer("consecutiveConnectFailures", default: 5, in: 0...1000)
            cluster.outlier.baseEjectionMilliseconds = try outlier.integer("baseEjectionMs", default: 30_000, in: 1...3_600_000)
            cluster.outlier.maxEjectionPercent = try outlier.integer("maxEjectionPercent", default: 10, in: 0...100)
            try outlier.finish()
        }
        if var check = try reader.object("healthCheck") {
            var health = ProxyConfig.HealthCheck(httpPath: try check.optionalString("httpPath"))
            health.intervalMilliseconds = try check.integer("intervalMs", default: 5_000, in: 10...3_600_000)
            health.timeoutMilliseconds = try check.integer("timeoutMs", default: 1_000, in: 1...600_000)
            health.unhealthyThreshold = try check.integer("unhealthyThreshold", default: 2, in: 1...100)
            health.healthyThreshold = try check.integer("healthyThreshold", default: 1, in: 1...100)
            try check.finish()
            cluster.healthCheck = health
        }
        return cluster
    }
}

/// Reads one JSON object field by field, remembering which keys were used so that `finish`
/// can reject misspelled ones (a typo in a proxy config should not silently mean a default).
struct ObjectReader {
    let path: String
    private let object: JSONObject
    private var used = Set<String>()

    init(_ json: JSON, path: String) throws(ConfigError) {
        guard let object = json.objectValue else { throw ConfigError(path, "must be an object, not \(json.typeName)") }
        self.object = object
        self.path = path
    }

    private func at(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    private mutating func value(_ key: String) -> JSON? {
        used.insert(key)
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    mutating func optionalString(_ key: String) throws(ConfigError) -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value.stringValue, !text.isEmpty else { throw ConfigError(at(key), "must be a non-empty string") }
        return text
    }

    mutating func string(_ key: String) throws(ConfigError) -> String {
        guard let text = try optionalString(key) else { throw ConfigError(at(key), "is required") }
        return text
    }

    mutating func address(_ key: String) throws(ConfigError) -> HostPort {
        let text = try string(key)
        do { return try HostPort(parsing: text) } catch { throw ConfigError(at(key), error.message) }
    }

    mutating func integer(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let value = value(key) else { return fallback }
        guard let number = value.intValue else { throw ConfigError(at(key), "must be an integer") }
        guard range.contains(number) else {
            throw ConfigError(at(key), "must be between \(range.lowerBound) and \(range.upperBound), not \(number)")
        }
        return number
    }

    mutating func bool(_ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
        guard let value = value(key) else { return fallback }
        guard let flag = value.boolValue else { throw ConfigError(at(key), "must be true or false") }
        return flag
    }

    mutating func choice<T: RawRepresentable & CaseIterableChoice>(_ key: String, default fallback: T) throws(ConfigError) -> T
    where T.RawValue == String {
        guard let text = try optionalString(key) else { return fallback }
        guard let choice = T(rawValue: text) else {
            throw ConfigError(at(key), "must be one of \(T.choices.joined(separator: ", ")), not \"\(text)\"")
        }
        return choice
    }

    mutating func object(_ key: String) throws(ConfigError) -> ObjectReader? {
        guard let value = value(key) else { return nil }
        return try ObjectReader(value, path: at(key))
    }

    mutating func list<T>(_ key: String, required: Bool, _ item: (inout ObjectReader) throws(ConfigError) -> T) throws(ConfigError) -> [T] {
        guard let value = value(key) else {
            if required { throw ConfigError(at(key), "is required") }
            return []
        }
        guard let array = value.arrayValue else { throw ConfigError(at(key), "must be a list") }
        var items: [T] = []
        for (index, element) in array.enumerated() {
            var reader = try ObjectReader(element, path: "\(at(key))[\(index)]")
            items.append(try item(&reader))
            try reader.finish()
        }
        return items
    }

    func finish() throws(ConfigError) {
        if let unknown = object.keys.first(where: { !used.contains($0) }) {
            throw ConfigError(at(unknown), "unknown field")
        }
    }
}

protocol CaseIterableChoice { static var choices: [String] { get } }
extension ProxyConfig.Direction: CaseIterableChoice { static var choices: [String] { ["inbound", "outbound"] } }
extension ProxyConfig.ListenerProtocol: CaseIterableChoice { static var choices: [String] { ["http", "tcp"] } }
extension ProxyConfig.Balancing: CaseIterableChoice { static var choices: [String] { ["round_robin", "least_request"] } }
