import Synchronization

/// Every statistic the proxy keeps, declared in one place (name, kind, help) so the list can move
/// to a shared telemetry registry unchanged. Workers count in plain arrays on their own thread and
/// publish a copy every tick, so the request path takes no lock for statistics.
public enum ProxyStat: Int, CaseIterable, Sendable {
    case downstreamConnections
    case downstreamConnectionsActive
    case downstreamRequests
    case downstreamRequestsInvalid
    case upstreamConnections
    case upstreamConnectFailures
    case upstreamRequests
    case upstreamResponses2xx
    case upstreamResponses3xx
    case upstreamResponses4xx
    case upstreamResponses5xx
    case upstreamRetries
    case upstreamTimeouts
    case upstreamOverflow
    case noRoute
    case noHealthyUpstream
    case tcpBytesForwarded

    public var name: String {
        switch self {
        case .downstreamConnections: "tandem_proxy_downstream_connections_total"
        case .downstreamConnectionsActive: "tandem_proxy_downstream_connections_active"
        case .downstreamRequests: "tandem_proxy_downstream_requests_total"
        case .downstreamRequestsInvalid: "tandem_proxy_downstream_requests_invalid_total"
        case .upstreamConnections: "tandem_proxy_upstream_connections_total"
        case .upstreamConnectFailures: "tandem_proxy_upstream_connect_failures_total"
        case .upstreamRequests: "tandem_proxy_upstream_requests_total"
        case .upstreamResponses2xx: "tandem_proxy_upstream_responses_2xx_total"
        case .upstreamResponses3xx: "tandem_proxy_upstream_responses_3xx_total"
        case .upstreamResponses4xx: "tandem_proxy_upstream_responses_4xx_total"
        case .upstreamResponses5xx: "tandem_proxy_upstream_responses_5xx_total"
        case .upstreamRetries: "tandem_proxy_upstream_retries_total"
        case .upstreamTimeouts: "tandem_proxy_upstream_timeouts_total"
        case .upstreamOverflow: "tandem_proxy_upstream_overflow_total"
        case .noRoute: "tandem_proxy_no_route_total"
        case .noHealthyUpstream: "tandem_proxy_no_healthy_upstream_total"
        case .tcpBytesForwarded: "tandem_proxy_tcp_bytes_forwarded_total"
        }
    }

    public var isGauge: Bool { self == .downstreamConnectionsActive }

    public var help: String {
        switch self {
        case .downstreamConnections: "Client connections accepted."
        case .downstreamConnectionsActive: "Client connections open now."
        case .downstreamRequests: "Requests received from clients."
        case .downstreamRequestsInvalid: "Client requests refused as malformed (400)."
        case .upstreamConnections: "Connections opened to upstream endpoints."
        case .upstreamConnectFailures: "Upstream connects that failed or timed out."
        case .upstreamRequests: "Requests sent upstream, retries included."
        case .upstreamResponses2xx: "Upstream responses with status 2xx."
        case .upstreamResponses3xx: "Upstream responses with status 3xx."
        case .upstreamResponses4xx: "Upstream responses with status 4xx."
        case .upstreamResponses5xx: "Upstream responses with status 5xx."
        case .upstreamRetries: "Requests tried again on another endpoint."
        case .upstreamTimeouts: "Requests that hit their route timeout (504)."
        case .upstreamOverflow: "Requests refused by a circuit-breaking limit (503)."
        case .noRoute: "Requests no route matched (404)."
        case .noHealthyUpstream: "Requests whose cluster had no endpoint to take them (503)."
        case .tcpBytesForwarded: "Bytes forwarded by TCP listeners, both directions."
        }
    }
}

/// One worker's counters: bumped on its loop thread, published as a copy each tick.
final class WorkerStats: @unchecked Sendable {
    private var counts = [Int](repeating: 0, count: ProxyStat.allCases.count)
    private let published = Mutex<[Int]>([Int](repeating: 0, count: ProxyStat.allCases.count))

    @inline(__always) func add(_ stat: ProxyStat, _ amount: Int = 1) { counts[stat.rawValue] &+= amount }

    func publish() {
        let copy = counts
        published.withLock { $0 = copy }
    }

    var snapshot: [Int] { published.withLock { $0 } }
}

/// Prometheus text exposition (format 0.0.4) of the declared stats plus per-cluster series.
enum PrometheusText {
    static func render(totals: [Int], clusters: [ClusterRuntime.Snapshot], extra: [(String, String, Int)]) -> String {
        var text = ""
        for stat in ProxyStat.allCases {
            text += "# HELP \(stat.name) \(stat.help)\n# TYPE \(stat.name) \(stat.isGauge ? "gauge" : "counter")\n"
            text += "\(stat.name) \(totals[stat.rawValue])\n"
        }
        let series: [(String, String, String, (ClusterRuntime.Snapshot) -> Int)] = [
            ("tandem_proxy_cluster_requests_active", "gauge", "Requests in flight per cluster.", { $0.activeRequests }),
            ("tandem_proxy_cluster_endpoints_healthy", "gauge", "Endpoints that may take new requests.", { $0.available }),
            ("tandem_proxy_cluster_outlier_ejections_total", "counter", "Endpoints ejected for consecutive failures.", { $0.ejections }),
        ]
        for (name, kind, help, value) in series {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind)\n"
            for cluster in clusters { text += "\(name){cluster=\"\(escape(cluster.name))\"} \(value(cluster))\n" }
        }
        for (name, help, value) in extra {
            text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(value)\n"
        }
        return text
    }

    static func escape(_ label: String) -> String {
        var out = ""
        for character in label {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
