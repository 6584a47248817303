import Testing
@testable import Proxy

@Suite struct RoutingTests {
    let table = RouteTable([
        .init(host: "api.example.com", pathPrefix: "/v1", clusters: [.init("api-v1")]),
        .init(host: "*.example.com", pathPrefix: "/", clusters: [.init("wild")]),
        .init(pathPrefix: "/static", clusters: [.init("static")]),
        .init(clusters: [.init("default")]),
    ])

    /// The first cluster of the matched route, if any.
    func cluster(_ index: Int?) -> String? { index.map { table.routes[$0].clusters[0].cluster } }

    @Test func firstMatchByHostAndPrefix() {
        #expect(cluster(table.match(host: "API.example.com:8080", path: "/v1/users")) == "api-v1")
        #expect(cluster(table.match(host: "api.example.com", path: "/v2")) == "wild")
        #expect(cluster(table.match(host: "example.com", path: "/static/a.css")) == "static")
        #expect(cluster(table.match(host: nil, path: "/anything")) == "default")
        #expect(RouteTable([.init(host: "a", clusters: [.init("x")])]).match(host: "b", path: "/") == nil)
        #expect(RouteTable.hostName("[::1]:80") == "[::1]")
    }

    @Test func ninetyTenSplitWithinOnePercent() {
        var generator = SplitMix64(seed: 42)
        let split: [ProxyConfig.WeightedCluster] = [.init("blue", weight: 90), .init("green", weight: 10)]
        var blue = 0
        for _ in 0..<10_000 where split[pickWeighted(split, using: &generator)].cluster == "blue" { blue += 1 }
        #expect(abs(blue - 9_000) <= 100, "blue got \(blue) of 10000")
    }

    @Test func zeroWeightIsNeverPicked() {
        var generator = SplitMix64(seed: 7)
        let split: [ProxyConfig.WeightedCluster] = [.init("old", weight: 0), .init("new", weight: 5)]
        for _ in 0..<1_000 { #expect(split[pickWeighted(split, using: &generator)].cluster == "new") }
    }
}
