/// Picks the route for a request: first route whose host and path prefix match. Pure.
public struct RouteTable: Sendable {
    public let routes: [ProxyConfig.Route]
    /// Most tables route by path alone: then the Host header is not even looked at.
    private let matchesHost: Bool

    public init(_ routes: [ProxyConfig.Route]) {
        self.routes = routes
        matchesHost = routes.contains { $0.host != nil }
    }

    /// The index of the first route whose host and path prefix match. `host` is as sent in the
    /// Host header (any port is ignored, case is folded), and only evaluated when some route
    /// names a host.
    public func match(host: @autoclosure () -> String?, path: Substring) -> Int? {
        let name = matchesHost ? host().map(Self.hostName) : nil
        return routes.firstIndex { route in
            path.utf8.starts(with: route.pathPrefix.utf8) && Self.hostMatches(route.host, name)
        }
    }

    static func hostName(_ host: String) -> String {
        var text = Substring(host)
        if text.hasPrefix("[") {
            if let close = text.firstIndex(of: "]") { text = text[...close] }
        } else if let colon = text.lastIndex(of: ":") {
            text = text[..<colon]
        }
        return text.lowercased()
    }

    static func hostMatches(_ pattern: String?, _ host: String?) -> Bool {
        guard let pattern else { return true }
        guard let host else { return false }
        if pattern.hasPrefix("*.") { return host.hasSuffix(pattern.dropFirst()) && host.count > pattern.count - 1 }
        return pattern == host
    }
}

/// Picks one of a route's weighted clusters (blue/green splits), as an index: weight w of
/// total W is chosen with probability w/W, drawn from the injected generator so tests are exact.
public func pickWeighted<G: RandomNumberGenerator>(_ clusters: [ProxyConfig.WeightedCluster], using generator: inout G) -> Int {
    if clusters.count == 1 { return 0 }
    let total = clusters.reduce(0) { $0 + $1.weight }
    var draw = Int.random(in: 0..<max(total, 1), using: &generator)
    for (index, weighted) in clusters.enumerated() {
        if draw < weighted.weight { return index }
        draw -= weighted.weight
    }
    return clusters.count - 1
}

/// A small, fast, seedable generator (SplitMix64): each worker owns one; tests seed theirs.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
