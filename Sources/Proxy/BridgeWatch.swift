import Document
import Telemetry

/// The bridge's answer to `GET /v1/watch/<service>`: the service's version and its endpoints,
/// mapped to what the proxy does with each (EndpointSlice semantics): `HEALTHY` serves,
/// `DRAINING` keeps the requests it has and gets no new ones (a terminating endpoint),
/// `UNHEALTHY` is left out.
struct BridgeAnswer: Equatable {
    var version: String
    var endpoints: [ProxyConfig.Endpoint]

    /// Unknown fields are ignored (the bridge describes more than the proxy needs); a missing or
    /// malformed field the proxy needs rejects the whole answer, so a broken bridge never
    /// replaces good endpoints with a guess.
    static func decode(_ body: [UInt8]) throws(ConfigError) -> BridgeAnswer {
        let json: JSON
        do { json = try JSONReader.parse(body) } catch { throw ConfigError("", "not JSON: \(error)") }
        guard json.objectValue != nil else { throw ConfigError("", "must be an object, not \(json.typeName)") }
        // Digits only: the version goes back into the next poll's query string as it is.
        guard let version = json["version"]?.stringValue ?? json["version"]?.numberText, !version.isEmpty,
              version.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw ConfigError("version", "must be a decimal number")
        }
        guard let items = json["endpoints"]?.arrayValue else { throw ConfigError("endpoints", "must be a list") }
        var endpoints: [ProxyConfig.Endpoint] = []
        var seen: [HostPort: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = "endpoints[\(index)]"
            guard let address = item["address"]?.stringValue, IPAddress(address) != nil else {
                throw ConfigError(path + ".address", "must be an IP address")
            }
            guard let port = item["port"]?.intValue, (1...65535).contains(port) else {
                throw ConfigError(path + ".port", "must be a port from 1 to 65535")
            }
            let terminating: Bool
            switch item["health"]?.stringValue {
            case "HEALTHY": terminating = false
            case "DRAINING": terminating = true
            case "UNHEALTHY": continue
            default: throw ConfigError(path + ".health", "must be HEALTHY, DRAINING or UNHEALTHY")
            }
            let endpoint = ProxyConfig.Endpoint(HostPort(host: address, port: port), terminating: terminating)
            // One address in two places (a pod that is also registered by hand) is one endpoint,
            // serving if either entry says so.
            if let earlier = seen[endpoint.address] {
                endpoints[earlier].terminating = endpoints[earlier].terminating && terminating
            } else {
                seen[endpoint.address] = endpoints.count
                endpoints.append(endpoint)
            }
        }
        return BridgeAnswer(version: version, endpoints: endpoints)
    }
}

/// One bridged cluster's long-poll as a pure state machine: the bridge's answers and failures
/// in, what to do out. The shell (`BridgeFollower`) sends the polls and performs the actions.
struct BridgeWatch {
    /// Nanoseconds.
    struct Timing: Sendable, Equatable {
        /// Polls start at most this often, so a service that changes all the time (every legacy
        /// heartbeat is a change) costs the bridge a bounded rate per proxy.
        var minimumInterval: Int64 = 200_000_000
        var firstBackoff: Int64 = 250_000_000
        var maximumBackoff: Int64 = 30_000_000_000
    }

    enum Action: Equatable {
        /// Replace the cluster's endpoints with these.
        case apply([ProxyConfig.Endpoint])
        case log(Logger.Level, String)
        case poll(afterNanoseconds: Int64)
    }

    let cluster: String
    let source: ProxyConfig.BridgeService
    let timing: Timing
    /// The version of the last answer, sent with the next poll so the bridge holds it until a change.
    private(set) var version: String?
    /// What was last applied; nil before the first answer.
    private(set) var endpoints: [ProxyConfig.Endpoint]?
    private(set) var consecutiveFailures = 0
    /// nil before the first outcome; logged only when it changes.
    private(set) var reachable: Bool?

    init(cluster: String, source: ProxyConfig.BridgeService, timing: Timing = Timing()) {
        self.cluster = cluster
        self.source = source
        self.timing = timing
    }

    /// The URL of the next poll.
    var url: String {
        let base = source.bridge.hasSuffix("/") ? String(source.bridge.dropLast()) : source.bridge
        return base + "/v1/watch/" + source.service + (version.map { "?version=" + $0 } ?? "")
    }

    /// An HTTP answer; `elapsed` is how long ago its poll started, `random` is in 0..<1.
    mutating func answered(status: Int, body: [UInt8], elapsed: Int64, random: Double) -> [Action] {
        guard status == 200 else { return failed("HTTP \(status)", random: random) }
        let answer: BridgeAnswer
        do { answer = try BridgeAnswer.decode(body) } catch { return failed("bad answer: \(error)", random: random) }
        var actions: [Action] = []
        let wasReachable = reachable
        reachable = true
        consecutiveFailures = 0
        if answer.version != version {
            if answer.version == "0", let endpoints, !endpoints.isEmpty {
                // Version 0: the bridge has not seen the service since it started (it restarted and
                // its hosts have not checked in yet). That is no news, so the cluster keeps what it has.
                actions.append(.log(.warn, "tandem proxy: cluster \(cluster): bridge \(source.bridge) does not know service \(source.service); keeping \(endpoints.count) endpoints"))
            } else if answer.endpoints != endpoints {
                endpoints = answer.endpoints
                actions.append(.apply(answer.endpoints))
                actions.append(.log(.debug, "tandem proxy: cluster \(cluster): \(Self.describe(answer.endpoints)) from service \(source.service), version \(answer.version)"))
            }
            version = answer.version
        }
        switch wasReachable {
        case nil:
            actions.append(.log(.info, "tandem proxy: cluster \(cluster) follows service \(source.service) at \(source.bridge): \(Self.describe(endpoints ?? []))"))
        case false?:
            actions.append(.log(.info, "tandem proxy: cluster \(cluster): bridge \(source.bridge) answers again, following service \(source.service): \(Self.describe(endpoints ?? []))"))
        case true?:
            break
        }
        actions.append(.poll(afterNanoseconds: max(0, timing.minimumInterval - elapsed)))
        return actions
    }

    /// The poll failed (refused, timed out, cut off, not 200, not a valid answer). The cluster
    /// keeps its endpoints; the next poll waits a backoff.
    mutating func failed(_ reason: String, random: Double) -> [Action] {
        consecutiveFailures += 1
        var actions: [Action] = []
        if reachable != false {
            let kept = endpoints.map { "keeping \(Self.describe($0))" } ?? "no endpoints from it yet"
            actions.append(.log(.warn, "tandem proxy: cluster \(cluster): bridge \(source.bridge) unreachable (\(reason)); \(kept), retrying with backoff"))
        }
        reachable = false
        actions.append(.poll(afterNanoseconds: Self.backoff(failures: consecutiveFailures, timing: timing, random: random)))
        return actions
    }

    /// Doubles from `firstBackoff` with each consecutive failure, up to `maximumBackoff`, with
    /// equal jitter (half fixed, half random): proxies that lost the bridge together do not all
    /// come back in the same instant.
    static func backoff(failures: Int, timing: Timing, random: Double) -> Int64 {
        let doublings = min(max(failures - 1, 0), 40)
        var ceiling = timing.firstBackoff
        for _ in 0..<doublings where ceiling < timing.maximumBackoff { ceiling *= 2 }
        ceiling = min(ceiling, timing.maximumBackoff)
        return ceiling / 2 + Int64(Double(ceiling / 2) * min(max(random, 0), 1))
    }

    private static func describe(_ endpoints: [ProxyConfig.Endpoint]) -> String {
        let draining = endpoints.filter(\.terminating).count
        return "\(endpoints.count) endpoints" + (draining > 0 ? " (\(draining) draining)" : "")
    }
}
