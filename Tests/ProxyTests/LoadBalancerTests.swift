import Testing
@testable import Proxy

@Suite struct LoadBalancerTests {
    static func cluster(_ weights: [Int], balancing: ProxyConfig.Balancing = .roundRobin, terminating: Set<Int> = []) -> ProxyConfig.Cluster {
        ProxyConfig.Cluster(name: "c", balancing: balancing, endpoints: weights.enumerated().map { index, weight in
            .init(HostPort(host: "10.0.0.\(index + 1)", port: 80), weight: weight, terminating: terminating.contains(index))
        })
    }

    func counts(_ balancer: inout LoadBalancer, picks: Int, now: Int64 = 0) -> [Int] {
        var generator = SplitMix64(seed: 1)
        var counts = Array(repeating: 0, count: balancer.members.count)
        for _ in 0..<picks { if let index = balancer.pick(now: now, using: &generator) { counts[index] += 1 } }
        return counts
    }

    @Test func roundRobinIsEvenAndWeighted() {
        var even = LoadBalancer(Self.cluster([1, 1, 1]))
        let got1 = counts(&even, picks: 300)
        #expect(got1 == [100, 100, 100])
        var weighted = LoadBalancer(Self.cluster([9, 1]))
        let got2 = counts(&weighted, picks: 10_000)
        #expect(got2 == [9_000, 1_000])
    }

    @Test func terminatingEndpointsGetNoNewRequests() {
        var balancer = LoadBalancer(Self.cluster([1, 1, 1], terminating: [1]))
        let got3 = counts(&balancer, picks: 100)[1]
        #expect(got3 == 0)
        var allTerminating = LoadBalancer(Self.cluster([1], terminating: [0]))
        let got4 = counts(&allTerminating, picks: 10)
        #expect(got4 == [0])
    }

    @Test func leastRequestPrefersTheIdleEndpoint() {
        var balancer = LoadBalancer(Self.cluster([1, 1], balancing: .leastRequest))
        for _ in 0..<10 { balancer.started(0) }
        let got5 = counts(&balancer, picks: 100)
        #expect(got5 == [0, 100])
        var three = LoadBalancer(Self.cluster([1, 1, 1], balancing: .leastRequest))
        let spread = counts(&three, picks: 3_000)
        #expect(spread.allSatisfy { (800...1200).contains($0) }, "\(spread)")
    }

    @Test func consecutiveFailuresEjectWithGrowingTime() {
        var cluster = Self.cluster([1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        cluster.outlier.consecutive5xx = 3
        cluster.outlier.baseEjectionMilliseconds = 1_000
        var balancer = LoadBalancer(cluster)
        let ejected1 = balancer.record(0, .serverError, now: 0)
        #expect(!ejected1)
        let ejected2 = balancer.record(0, .serverError, now: 0)
        #expect(!ejected2)
        let ejected3 = balancer.record(0, .serverError, now: 0)
        #expect(ejected3)
        #expect(balancer.members[0].ejectedUntil == 1_000_000_000)
        let got6 = counts(&balancer, picks: 90, now: 1)[0]
        #expect(got6 == 0)
        let got7 = counts(&balancer, picks: 100, now: 1_000_000_000)[0]
        #expect(got7 == 10)
        for _ in 0..<3 { balancer.record(0, .serverError, now: 2_000_000_000) }
        #expect(balancer.members[0].ejectedUntil == 4_000_000_000, "second ejection lasts twice as long")
    }

    @Test func successResetsTheCount() {
        var cluster = Self.cluster([1, 1])
        cluster.outlier.consecutiveConnectFailures = 2
        var balancer = LoadBalancer(cluster)
        balancer.record(0, .connectFailure, now: 0)
        balancer.record(0, .success, now: 0)
        let ejected4 = balancer.record(0, .connectFailure, now: 0)
        #expect(!ejected4)
        let ejected5 = balancer.record(0, .connectFailure, now: 0)
        #expect(ejected5)
    }

    @Test func ejectionIsCappedButOneIsAlwaysAllowed() {
        var cluster = Self.cluster(Array(repeating: 1, count: 4))
        cluster.outlier.consecutive5xx = 1
        cluster.outlier.maxEjectionPercent = 10
        var balancer = LoadBalancer(cluster)
        let ejected6 = balancer.record(0, .serverError, now: 0)
        #expect(ejected6)
        let ejected7 = balancer.record(1, .serverError, now: 0)
        #expect(!ejected7, "a second would exceed 10%")
        cluster.outlier.maxEjectionPercent = 50
        balancer.update(cluster)
        let ejected8 = balancer.record(1, .serverError, now: 0)
        #expect(ejected8)
        let ejected9 = balancer.record(2, .serverError, now: 0)
        #expect(!ejected9)
    }

    @Test func everyEndpointDownFallsBackToAll() {
        var cluster = Self.cluster([1, 1])
        let check = ProxyConfig.HealthCheck(httpPath: "/")
        var balancer = LoadBalancer(cluster)
        for index in 0..<2 { for _ in 0..<check.unhealthyThreshold { balancer.healthCheck(index, passed: false, check) } }
        #expect(balancer.members.allSatisfy { !$0.healthy })
        let got8 = counts(&balancer, picks: 10)
        #expect(got8 == [5, 5])
        balancer.healthCheck(1, passed: true, check)
        let got9 = counts(&balancer, picks: 10)
        #expect(got9 == [0, 10])
        cluster.endpoints.remove(at: 0)
        balancer.update(cluster)
        #expect(balancer.members.count == 1 && balancer.members[0].healthy, "state kept for endpoints that stay")
    }
}
