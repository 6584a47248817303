import Synchronization
import Telemetry

/// Every statistic the data plane keeps, declared in one place (name, type, help). Workers count
/// in plain arrays on their own thread and publish a copy every tick, so the request path takes
/// no lock for statistics; the metrics registry sums the copies when it is scraped.
public enum ProxyStat: Int, CaseIterable, Sendable {
    case downstreamConnections
    case downstreamConnectionsActive
    case downstreamRequests
    case downstreamRequestsInvalid
    case downstreamAcceptPauses
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
        case .downstreamAcceptPauses: "tandem_proxy_downstream_accept_pauses_total"
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

    public var type: MetricType { self == .downstreamConnectionsActive ? .gauge : .counter }

    public var help: String {
        switch self {
        case .downstreamConnections: "Client connections accepted."
        case .downstreamConnectionsActive: "Client connections open now."
        case .downstreamRequests: "Requests received from clients."
        case .downstreamRequestsInvalid: "Client requests refused as malformed (400)."
        case .downstreamAcceptPauses: "Times a listener stopped accepting for 100 ms because accepting failed (out of descriptors)."
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
