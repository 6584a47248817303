import Testing
@testable import Proxy

@Suite struct ConfigTests {
    static let sample = """
    listeners:
      - name: inbound
        address: 0.0.0.0:15006
        routes:
          - host: api.example.com
            prefix: /v1
            clusters: [{name: blue, weight: 90}, {name: green, weight: 10}]
          - cluster: blue
      - name: db
        address: "[::1]:5432"
        direction: outbound
        protocol: tcp
        routes: [{cluster: green}]
    clusters:
      - name: blue
        balancing: least_request
        endpoints: [{address: 10.0.0.1:8080}, {address: 10.0.0.2:8080, weight: 3, terminating: true}]
        outlier: {consecutive5xx: 3}
        healthCheck: {httpPath: /healthz, intervalMs: 100}
      - name: green
        endpoints: [{address: 10.0.1.1:8080}]
    """

    @Test func readsEveryField() throws {
        let config = try ConfigReader.read(Self.sample)
        #expect(config.listeners.map(\.name) == ["inbound", "db"])
        #expect(config.listeners[0].routes[0].clusters == [.init("blue", weight: 90), .init("green", weight: 10)])
        #expect(config.listeners[0].routes[1].clusters == [.init("blue")])
        #expect(config.listeners[1].address == HostPort(host: "::1", port: 5432))
        #expect(config.listeners[1].protocol == .tcp && config.listeners[1].direction == .outbound)
        let blue = try #require(config.cluster(named: "blue"))
        #expect(blue.balancing == .leastRequest)
        #expect(blue.endpoints[1] == .init(HostPort(host: "10.0.0.2", port: 8080), weight: 3, terminating: true))
        #expect(blue.outlier.consecutive5xx == 3 && blue.outlier.consecutiveConnectFailures == 5)
        #expect(blue.healthCheck?.httpPath == "/healthz" && blue.healthCheck?.intervalMilliseconds == 100)
    }

    @Test func jsonIsAccepted() throws {
        let config = try ConfigReader.read(#"{"listeners":[{"name":"l","address":"127.0.0.1:0","routes":[{"cluster":"c"}]}],"clusters":[{"name":"c","endpoints":[]}]}"#)
        #expect(config.clusters[0].endpoints.isEmpty)
    }

    @Test func clustersMayFollowABridgeService() throws {
        let config = try ConfigReader.read("""
            bridge: http://tandem-bridge.tandem-system:8090/
            listeners: [{name: out, address: 127.0.0.1:9001, direction: outbound, routes: [{cluster: checkout}]}]
            clusters: [{name: checkout, service: checkout.shop, balancing: least_request}, {name: local, endpoints: [{address: 127.0.0.1:8080}]}]
            """)
        #expect(config.bridge == "http://tandem-bridge.tandem-system:8090", "one trailing slash is dropped")
        let checkout = try #require(config.cluster(named: "checkout"))
        #expect(checkout.service == "checkout.shop" && checkout.endpoints.isEmpty)
        #expect(config.bridgeService(of: checkout) == .init(bridge: "http://tandem-bridge.tandem-system:8090", service: "checkout.shop"))
        #expect(config.bridgeService(of: config.clusters[1]) == nil)
        // A dump reads back; a bridged cluster's endpoints belong to the bridge, not to the dump.
        var running = config
        running.clusters[0].endpoints = [.init(HostPort(host: "10.0.0.7", port: 80))]
        #expect(try ConfigReader.decode(ConfigWriter.json(running)) == config)
    }

    @Test(arguments: [
        ("listeners: []\nclusters: [{name: c, endpoints: [], colour: red}]", "clusters[0].colour: unknown field"),
        ("clusters: []", "listeners: is required"),
        ("listeners: [{name: l, address: 1.2.3.4, routes: [{cluster: c}]}]", "listeners[0].address: \"1.2.3.4\" is not ADDR:PORT"),
        ("listeners: [{name: l, address: 'db:80', routes: [{cluster: c}]}]", "listeners[0].address: \"db:80\": \"db\" is not an IP address"),
        ("listeners: [{name: l, address: 1.2.3.4:70000, routes: [{cluster: c}]}]", "listeners[0].address: \"1.2.3.4:70000\": port must be 0-65535"),
        ("listeners: [{name: l, address: 1.2.3.4:80, routes: [{cluster: nope}]}]", "listeners[0].routes[0].clusters[0]: unknown cluster \"nope\""),
        ("listeners: [{name: l, address: 1.2.3.4:80, routes: [{}]}]", "listeners[0].routes[0]: needs exactly one of cluster or clusters"),
        ("listeners: [{name: l, address: 1.2.3.4:80, routes: [{cluster: c, prefix: v1}]}]\nclusters: [{name: c}]", "listeners[0].routes[0].prefix: must start with /"),
        ("listeners: [{name: l, address: 1.2.3.4:80, routes: [{clusters: [{name: c, weight: 0}]}]}]\nclusters: [{name: c}]", "listeners[0].routes[0].clusters: at least one weight must be above 0"),
        ("listeners: [{name: l, address: 1.2.3.4:80, protocol: udp, routes: [{cluster: c}]}]", "listeners[0].protocol: must be one of http, tcp, not \"udp\""),
        ("listeners: []\nclusters: [{name: c, endpoints: [{address: 1.1.1.1:1, weight: 0}]}]", "clusters[0].endpoints[0].weight: must be between 1 and 1000000, not 0"),
        ("listeners: []\nclusters: [{name: c}, {name: c}]", "clusters[1].name: duplicate cluster \"c\""),
        ("listeners: [{name: a, address: 1.2.3.4:80, routes: [{cluster: c}]}, {name: b, address: 1.2.3.4:80, routes: [{cluster: c}]}]\nclusters: [{name: c}]", "listeners[1].address: 1.2.3.4:80 is already used by another listener"),
        ("listeners: [{name: a, address: 1.2.3.4:80, protocol: tcp, routes: [{cluster: c, prefix: /x}]}]\nclusters: [{name: c}]", "listeners[0].routes[0]: a tcp listener cannot match host or prefix"),
        ("listeners: [{name: a, address: 1.2.3.4:80, routes: [{cluster: c}]}]\nclusters: [{name: c, limits: {maxRequests: x}}]", "clusters[0].limits.maxRequests: must be an integer"),
        ("listeners: []\nclusters: [{name: c, service: web}]", "clusters[0].service: needs a bridge: set the top-level bridge URL"),
        ("bridge: http://10.0.0.1:8090\nlisteners: []\nclusters: [{name: c, service: Web_1}]", "clusters[0].service: \"Web_1\" must be lower-case letters, digits, '-' and '.'"),
        ("bridge: http://10.0.0.1:8090\nlisteners: []\nclusters: [{name: c, service: web, endpoints: [{address: 1.1.1.1:1}]}]", "clusters[0]: takes endpoints from its list or from a bridge service, not both"),
        ("bridge: 10.0.0.1:8090\nlisteners: []", "bridge: unsupported URL \"10.0.0.1:8090\": want http:// or https://"),
        ("bridge: http://10.0.0.1:8090/?x=1\nlisteners: []", "bridge: \"http://10.0.0.1:8090/?x=1\" must not have a query or fragment"),
    ])
    func exactErrors(text: String, message: String) {
        #expect(throws: ConfigError.self) { try ConfigReader.read(text) }
        do { _ = try ConfigReader.read(text) } catch { #expect(error.description == message) }
    }
}
