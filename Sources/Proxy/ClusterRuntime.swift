import Synchronization
import Net

/// A cluster shared by every worker: its balancer and limits behind one lock, so that outlier
/// ejection, health and circuit breaking see all the traffic. Updated in place on reload, so
/// connections and counters survive configuration changes.
final class ClusterRuntime: Sendable {
    let name: String

    struct State {
        var config: ProxyConfig.Cluster
        var balancer: LoadBalancer
        var generator: SplitMix64
        var activeRequests = 0
        var connections = 0
        var pendingRequests = 0
        var activeRetries = 0
        var ejections = 0
    }

    /// What `admit` decided for a new request.
    enum Admission {
        case endpoint(HostPort)
        case overflow
        case noEndpoint
    }

    private let state: Mutex<State>

    init(_ config: ProxyConfig.Cluster, seed: UInt64) {
        name = config.name
        state = Mutex(State(config: config, balancer: LoadBalancer(config), generator: SplitMix64(seed: seed)))
    }

    var config: ProxyConfig.Cluster { state.withLock { $0.config } }

    func update(_ config: ProxyConfig.Cluster) {
        state.withLock { state in
            state.config = config
            state.balancer.update(config)
        }
    }

    /// Picks an endpoint for a new request, or refuses it (circuit breaking, no endpoint).
    /// A retry also needs room in the retry budget.
    func admit(now: Int64, retry: Bool = false, excluding: HostPort? = nil) -> Admission {
        state.withLock { state in
            if state.activeRequests >= state.config.limits.maxRequests { return .overflow }
            if retry {
                let budget = max(3, state.activeRequests * state.config.retries.budgetPercent / 100)
                if state.activeRetries >= budget { return .overflow }
            }
            var pick = state.balancer.pick(now: now, using: &state.generator)
            if let index = pick, state.balancer.members[index].address == excluding, state.balancer.members.count > 1 {
                pick = state.balancer.pick(now: now, using: &state.generator)
            }
            guard let index = pick else { return .noEndpoint }
            state.balancer.started(index)
            state.activeRequests += 1
            if retry { state.activeRetries += 1 }
            return .endpoint(state.balancer.members[index].address)
        }
    }

    /// Ends what `admit` started; a nil outcome (the client went away) says nothing of the endpoint.
    func finish(_ address: HostPort, _ outcome: LoadBalancer.Outcome?, now: Int64, retry: Bool = false) {
        state.withLock { state in
            state.activeRequests -= 1
            if retry { state.activeRetries -= 1 }
            guard let index = state.balancer.members.firstIndex(where: { $0.address == address }) else { return }
            state.balancer.released(index)
            if let outcome, state.balancer.record(index, outcome, now: now) { state.ejections += 1 }
        }
    }

    /// Reserves a new upstream connection (or a pending slot while it connects) within limits.
    func openConnection() -> Bool {
        state.withLock { state in
            guard state.connections < state.config.limits.maxConnections,
                  state.pendingRequests < state.config.limits.maxPendingRequests else { return false }
            state.connections += 1
            state.pendingRequests += 1
            return true
        }
    }

    func connectFinished() { state.withLock { $0.pendingRequests -= 1 } }
    func closedConnection() { state.withLock { $0.connections -= 1 } }

    func healthCheck(_ address: HostPort, passed: Bool) {
        state.withLock { state in
            guard let check = state.config.healthCheck,
                  let index = state.balancer.members.firstIndex(where: { $0.address == address }) else { return }
            state.balancer.healthCheck(index, passed: passed, check)
        }
    }

    struct Snapshot: Sendable {
        var name: String
        var activeRequests: Int
        var connections: Int
        var ejections: Int
        var available: Int
        var members: [LoadBalancer.Member]
    }

    func snapshot(now: Int64) -> Snapshot {
        state.withLock { state in
            Snapshot(name: name, activeRequests: state.activeRequests, connections: state.connections, ejections: state.ejections,
                     available: state.balancer.members.filter { !$0.terminating && $0.healthy && !$0.isEjected(at: now) }.count,
                     members: state.balancer.members)
        }
    }
}
