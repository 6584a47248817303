import Testing
import Synchronization
import Bridge
import Kubernetes
import Net
import Telemetry
import TestSupport
@testable import Proxy

/// A real `BridgeServer` on loopback, registered with over its HTTP API like a legacy fleet does.
private struct RunningBridge {
    static let token = "s3cret"
    let group: EventLoopGroup
    let server: BridgeServer
    let client: HTTPClient
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    static func start(port: Int = 0) async throws -> RunningBridge {
        let group = try EventLoopGroup(threads: 1)
        let server = BridgeServer(configuration: BridgeConfiguration(port: port, tokens: [token]), group: group)
        try await server.start()
        return RunningBridge(group: group, server: server, client: HTTPClient(loop: group.next()), port: try #require(server.localAddress?.port))
    }

    func register(_ service: String, _ backend: Backend) async throws {
        let response = try await client.send(HTTPClientRequest(
            method: .post, url: url + "/v1/registration/" + service,
            headers: ["Authorization": "Bearer " + Self.token, "Content-Type": "application/x-www-form-urlencoded"],
            body: Array("ip=127.0.0.1&port=\(backend.port)&revision=r1".utf8)))
        #expect(response.status == 200)
    }

    func deregister(_ service: String, _ backend: Backend) async throws {
        let response = try await client.send(HTTPClientRequest(
            method: .delete, url: url + "/v1/registration/\(service)/127.0.0.1:\(backend.port)",
            headers: ["Authorization": "Bearer " + Self.token]))
        #expect(response.status == 200)
    }

    /// The Kubernetes side: a Service's pod at `backend`, ready or terminating.
    func pod(of service: String, at backend: Backend, terminating: Bool = false) {
        server.apply(.sliceChanged(EndpointSlice(
            namespace: "default", name: service + "-pods", serviceName: service, managedBy: "endpointslice-controller.k8s.io",
            addressType: "IPv4", ports: [.init(name: "http", port: backend.port, protocolName: "TCP")],
            endpoints: [.init(addresses: ["127.0.0.1"], ready: !terminating, serving: true, terminating: terminating,
                              nodeName: nil, zone: "z1", target: "default/pod-c")])))
    }

    func stop() async {
        await client.closeIdleConnections()
        await server.shutdown()
        group.shutdown()
    }
}

/// Log lines the proxy wrote, kept for the test to read.
private final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var log: @Sendable (Logger.Level, String) -> Void { { [self] _, line in lines.withLock { $0.append(line) } } }
    func count(containing text: String) -> Int { lines.withLock { $0.filter { $0.contains(text) }.count } }
}

private func bridgedConfig(_ bridge: RunningBridge, service: String = "web") -> ProxyConfig {
    var config = httpConfig([])
    config.bridge = bridge.url
    config.clusters[0].service = service
    return config
}

/// Which backends answered `count` requests on one kept-alive connection; nil if any failed.
private func backends(_ client: RawClient, _ count: Int = 12) -> Set<String>? {
    var names = Set<String>()
    for _ in 0..<count {
        guard let response = client.get("/"), response.head.status == 200, let line = response.text.split(separator: "\n").first else { return nil }
        names.insert(String(line.dropFirst("backend=".count)))
    }
    return names
}

/// The value of one series (`name{labels}`) in a Prometheus exposition.
private func value(_ proxy: ProxyServer, _ series: String) -> Double? {
    for line in proxy.metrics.exposition().split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

@Suite(.serialized) struct BridgeDiscoveryTests {
    @Test func followsTheBridgeInPlaceWithoutDroppingConnections() async throws {
        let a = try await Backend.start(name: "a"), b = try await Backend.start(name: "b"), c = try await Backend.start(name: "c")
        let bridge = try await RunningBridge.start()
        try await bridge.register("web", a)
        let proxy = try ProxyServer(config: bridgedConfig(bridge))
        try proxy.start()
        #expect(await eventually { proxy.config.clusters[0].endpoints.count == 1 })
        let client = try RawClient(port: proxy.port(of: "in")!)
        #expect(backends(client) == ["a"])

        try await bridge.register("web", b)
        #expect(await eventually { backends(client) == ["a", "b"] }, "a new host takes requests")
        try await bridge.deregister("web", a)
        #expect(await eventually { backends(client) == ["b"] }, "a host that left takes none")
        bridge.pod(of: "web", at: c)
        #expect(await eventually { backends(client) == ["b", "c"] }, "pods and legacy hosts of one service serve together")

        // DRAINING: a request in flight on the pod finishes there; new ones go elsewhere.
        try await bridge.deregister("web", b)
        #expect(await eventually { backends(client) == ["c"] })
        let inFlight = try RawClient(port: proxy.port(of: "in")!)
        #expect(inFlight.send("GET /held HTTP/1.1\r\nhost: test\r\n\r\n"))
        #expect(await eventually { c.held.count == 1 })
        bridge.pod(of: "web", at: c, terminating: true)
        try await bridge.register("web", b)
        #expect(await eventually {
            proxy.config.clusters[0].endpoints == [.init(c.address, terminating: true), .init(b.address)]
        })
        c.release()
        let finished = inFlight.responses(1)
        #expect(finished.first?.head.status == 200 && finished.first?.text == "backend=c held")
        #expect(backends(client, 20) == ["b"], "a draining endpoint gets no new requests")
        #expect(ProxyAdmin(proxy: proxy) { _ in }.clustersText().contains("app::\(c.address)::health_flags::/pending_dynamic_removal\n"))

        #expect(await eventually { proxy.statistics()[.downstreamConnections] == 2 }, "the keep-alive connection lived through every change")
        #expect(value(proxy, #"tandem_proxy_discovery_connected{cluster="app"}"#) == 1)
        // Seven changes; the last two may arrive in one answer.
        #expect((6...7).contains(value(proxy, #"tandem_proxy_discovery_updates_total{cluster="app"}"#) ?? 0))
        #expect(value(proxy, #"tandem_proxy_discovery_failures_total{cluster="app"}"#) == 0)
        #expect(value(proxy, #"tandem_proxy_discovery_last_success_age_seconds{cluster="app"}"#) != nil)
        proxy.stop()
        await bridge.stop()
        for backend in [a, b, c] { await backend.stop() }
    }

    @Test func keepsTheLastEndpointsWhileTheBridgeIsAwayThenResumes() async throws {
        let a = try await Backend.start(name: "a"), d = try await Backend.start(name: "d")
        var bridge = try await RunningBridge.start()
        try await bridge.register("web", a)
        let lines = LogLines()
        let proxy = try ProxyServer(config: bridgedConfig(bridge), log: lines.log)
        try proxy.start()
        defer { proxy.stop() }
        #expect(await eventually { proxy.config.clusters[0].endpoints.count == 1 })
        let client = try RawClient(port: proxy.port(of: "in")!)
        #expect(backends(client) == ["a"])

        let port = bridge.port
        await bridge.stop()
        #expect(await eventually { value(proxy, #"tandem_proxy_discovery_failures_total{cluster="app"}"#) ?? 0 >= 3 })
        #expect(value(proxy, #"tandem_proxy_discovery_connected{cluster="app"}"#) == 0)
        #expect(backends(client) == ["a"], "the last endpoints keep serving")
        #expect(lines.count(containing: "unreachable") == 1, "one line for the change of state, not one per failure")

        bridge = try await RunningBridge.start(port: port)
        try await bridge.register("web", d)
        #expect(await eventually(timeout: .seconds(10)) { backends(client) == ["d"] }, "followed again once the bridge is back")
        #expect(lines.count(containing: "answers again") == 1)
        #expect(value(proxy, #"tandem_proxy_discovery_connected{cluster="app"}"#) == 1)
        await bridge.stop()
        await a.stop()
        await d.stop()
    }

    @Test func aReloadKeepsTheBridgesEndpointsUnlessTheServiceChanges() async throws {
        let a = try await Backend.start(name: "a"), d = try await Backend.start(name: "d")
        let bridge = try await RunningBridge.start()
        try await bridge.register("web", a)
        try await bridge.register("api", d)
        let proxy = try ProxyServer(config: bridgedConfig(bridge))
        try proxy.start()
        defer { proxy.stop() }
        #expect(await eventually { proxy.config.clusters[0].endpoints.count == 1 })
        let client = try RawClient(port: proxy.port(of: "in")!)

        var edited = bridgedConfig(bridge)
        edited.listeners[0].routes[0].timeoutMilliseconds = 5_000
        try proxy.apply(edited)
        #expect(proxy.config.clusters[0].endpoints == [.init(a.address)], "the file has no endpoints; the bridge's stay")
        #expect(backends(client) == ["a"])

        try proxy.apply(bridgedConfig(bridge, service: "api"))
        #expect(await eventually { backends(client) == ["d"] }, "another service: its endpoints, from the bridge")
        #expect(try proxy.setEndpoints([.init(a.address)], cluster: "app", from: .init(bridge: bridge.url, service: "web")) == false,
                "a late answer for the old service is dropped")
        #expect(backends(client) == ["d"])
        await bridge.stop()
        await a.stop()
        await d.stop()
    }
}
