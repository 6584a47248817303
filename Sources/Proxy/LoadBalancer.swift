/// One cluster's endpoints and what is known about each: the pure core of load balancing,
/// outlier ejection, active health and circuit breaking. Times are nanoseconds from any clock.
public struct LoadBalancer: Sendable {
    public struct Member: Sendable, Equatable {
        public var address: HostPort
        public var weight: Int
        public var terminating: Bool
        /// Requests sent and not yet finished (least request balances on this).
        public var active = 0
        /// Set by active health checks; true until a check says otherwise.
        public var healthy = true
        public var ejectedUntil: Int64 = 0
        /// How many times ejected: each ejection lasts base × this.
        public var ejections = 0
        var consecutive5xx = 0
        var consecutiveConnectFailures = 0
        var healthChecksPassed = 0
        var healthChecksFailed = 0
        /// Smooth weighted round robin's running score (nginx's algorithm).
        var score = 0

        public func isEjected(at now: Int64) -> Bool { ejectedUntil > now }
    }

    public enum Outcome: Sendable, Equatable { case success, serverError, connectFailure }

    public private(set) var members: [Member] = []
    public private(set) var balancing: ProxyConfig.Balancing
    public private(set) var outlier: ProxyConfig.Outlier

    public init(_ cluster: ProxyConfig.Cluster) {
        balancing = cluster.balancing
        outlier = cluster.outlier
        update(cluster)
    }

    /// Takes a new endpoint list in place: endpoints that stay keep their counters and ejection.
    public mutating func update(_ cluster: ProxyConfig.Cluster) {
        balancing = cluster.balancing
        outlier = cluster.outlier
        var previous: [HostPort: Member] = [:]
        for member in members { previous[member.address] = member }
        members = cluster.endpoints.map { endpoint in
            var member = previous[endpoint.address] ?? Member(address: endpoint.address, weight: endpoint.weight, terminating: false)
            member.weight = endpoint.weight
            member.terminating = endpoint.terminating
            return member
        }
    }

    /// The endpoint for a new request, or nil when none may take one. Terminating endpoints
    /// never do. Ejected and unhealthy ones are skipped unless every endpoint is (then all the
    /// non-terminating ones serve: better a degraded answer than none, as Envoy's panic mode).
    public mutating func pick<G: RandomNumberGenerator>(now: Int64, using generator: inout G) -> Int? {
        // Counted in place rather than collected: this runs for every request.
        var strict = true
        var count = countEligible(now: now, strict: true)
        if count == 0 {
            strict = false
            count = countEligible(now: now, strict: false)
        }
        guard count > 0 else { return nil }
        switch balancing {
        case .roundRobin:
            return smoothWeighted(now: now, strict: strict)
        case .leastRequest:
            guard count > 1 else { return nthEligible(0, now: now, strict: strict) }
            let firstRank = Int.random(in: 0..<count, using: &generator)
            var secondRank = Int.random(in: 0..<(count - 1), using: &generator)
            if secondRank >= firstRank { secondRank += 1 }
            let first = nthEligible(firstRank, now: now, strict: strict)
            let second = nthEligible(secondRank, now: now, strict: strict)
            // Compare load per unit of weight: active/weight, cross-multiplied to stay in integers.
            let a = members[first], b = members[second]
            return (a.active + 1) * b.weight <= (b.active + 1) * a.weight ? first : second
        }
    }

    @inline(__always)
    private func isEligible(_ member: Member, now: Int64, strict: Bool) -> Bool {
        !member.terminating && (!strict || (member.healthy && !member.isEjected(at: now)))
    }

    private func countEligible(now: Int64, strict: Bool) -> Int {
        var count = 0
        for member in members where isEligible(member, now: now, strict: strict) { count += 1 }
        return count
    }

    private func nthEligible(_ rank: Int, now: Int64, strict: Bool) -> Int {
        var seen = 0
        for index in members.indices where isEligible(members[index], now: now, strict: strict) {
            if seen == rank { return index }
            seen += 1
        }
        return members.count - 1
    }

    private mutating func smoothWeighted(now: Int64, strict: Bool) -> Int {
        var total = 0, best = -1
        for index in members.indices where isEligible(members[index], now: now, strict: strict) {
            members[index].score += members[index].weight
            total += members[index].weight
            if best < 0 || members[index].score > members[best].score { best = index }
        }
        members[best].score -= total
        return best
    }

    public mutating func started(_ index: Int) { members[index].active += 1 }
    public mutating func released(_ index: Int) { members[index].active = max(0, members[index].active - 1) }

    /// Records how a request to `index` ended; returns true when that ejected the endpoint.
    @discardableResult
    public mutating func finished(_ index: Int, _ outcome: Outcome, now: Int64) -> Bool {
        guard members.indices.contains(index) else { return false }
        released(index)
        return record(index, outcome, now: now)
    }

    /// Passive outlier detection: consecutive 5xx or connect failures eject the endpoint for
    /// base × (number of ejections so far), unless that would eject more than the allowed share.
    @discardableResult
    public mutating func record(_ index: Int, _ outcome: Outcome, now: Int64) -> Bool {
        guard members.indices.contains(index) else { return false }
        switch outcome {
        case .success:
            members[index].consecutive5xx = 0
            members[index].consecutiveConnectFailures = 0
            return false
        case .serverError:
            members[index].consecutive5xx += 1
        case .connectFailure:
            members[index].consecutiveConnectFailures += 1
        }
        let member = members[index]
        let tripped = (outlier.consecutive5xx > 0 && member.consecutive5xx >= outlier.consecutive5xx)
            || (outlier.consecutiveConnectFailures > 0 && member.consecutiveConnectFailures >= outlier.consecutiveConnectFailures)
        guard tripped, !member.isEjected(at: now), mayEject(now: now) else { return false }
        members[index].ejections += 1
        members[index].ejectedUntil = now + Int64(outlier.baseEjectionMilliseconds) * 1_000_000 * Int64(members[index].ejections)
        members[index].consecutive5xx = 0
        members[index].consecutiveConnectFailures = 0
        return true
    }

    private func mayEject(now: Int64) -> Bool {
        guard outlier.maxEjectionPercent > 0 else { return false }
        let ejected = members.filter { $0.isEjected(at: now) }.count
        // Like Envoy, one endpoint may always be ejected, whatever the share.
        return ejected == 0 || (ejected + 1) * 100 <= outlier.maxEjectionPercent * members.count
    }

    /// An active health check result; thresholds of consecutive results flip `healthy`.
    public mutating func healthCheck(_ index: Int, passed: Bool, _ check: ProxyConfig.HealthCheck) {
        guard members.indices.contains(index) else { return }
        if passed {
            members[index].healthChecksFailed = 0
            members[index].healthChecksPassed += 1
            if members[index].healthChecksPassed >= check.healthyThreshold { members[index].healthy = true }
        } else {
            members[index].healthChecksPassed = 0
            members[index].healthChecksFailed += 1
            if members[index].healthChecksFailed >= check.unhealthyThreshold { members[index].healthy = false }
        }
    }
}
