import Bridge
import Document
import Kube
import Kubernetes
import Net
import Testing
import Telemetry
import TestSupport

/// The bridge against the fake API server: EndpointSlices flowing into the registry through
/// scale events, relists and restarts, and legacy hosts written back by exactly one replica.
@Suite(.serialized) struct KubernetesSyncTests {
    static let slices = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"
    static let services = "/api/v1/namespaces/shop/services"

    /// One bridge replica: its HTTP server, its Kubernetes shell, and a client to call it.
    final class Replica: Sendable {
        let group: EventLoopGroup
        let bridge: BridgeServer
        let sync: KubernetesSync
        let http: HTTPClient
        let base: String
        let task: Task<Void, Never>

        init(_ fixture: KubeFixture, ttl: Double = 600) async throws {
            group = try EventLoopGroup(threads: 2)
            bridge = BridgeServer(configuration: BridgeConfiguration(tokens: ["t0k3n"], defaultNamespace: "shop", ttl: ttl,
                                                                     sweepInterval: .milliseconds(20)), group: group)
            try await bridge.start()
            let port = try #require(bridge.localAddress?.port)
            base = "http://127.0.0.1:\(port)"
            let client = try KubeClient(config: fixture.client.config, loop: group.next())
            sync = KubernetesSync(client: client, server: bridge, options: KubernetesSyncOptions(
                namespaces: ["shop"], leaseNamespace: "tandem-system", identity: "127.0.0.1:\(port)",
                pollInterval: .milliseconds(20), leaseDuration: .seconds(2), renewDeadline: .milliseconds(1500),
                retryPeriod: .milliseconds(200),
                informer: Informer.Options(watchTimeoutSeconds: 30, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(400))),
                logger: Logger(level: .warn), metrics: MetricsRegistry())
            let sync = self.sync
            task = Task { await sync.run() }
            http = HTTPClient(loop: group.next())
        }

        func stop() async {
            task.cancel()
            await task.value
            await http.closeIdleConnections()
            await bridge.shutdown()
            group.shutdown()
        }

        func register(_ service: String, _ address: String, port: Int = 8080) async throws -> HTTPClientResponse {
            try await http.send(HTTPClientRequest(method: .post, url: base + "/v1/registration/" + service,
                                                  headers: ["Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer t0k3n"],
                                                  body: Array("ip=\(address)&port=\(port)&revision=r1&tags=%7B%22az%22%3A%22z1%22%7D".utf8)))
        }

        func deregister(_ service: String, _ address: String) async throws -> HTTPClientResponse {
            try await http.send(HTTPClientRequest(method: .delete, url: base + "/v1/registration/\(service)/\(address)",
                                                  headers: ["Authorization": "Bearer t0k3n"]))
        }

        /// `address:port health` of every endpoint of a service, as the Lyft-style GET says.
        func hosts(_ service: String) async throws -> [String] {
            let answer = try JSONReader.parse(try await http.send(HTTPClientRequest(url: base + "/v1/registration/" + service)).body)
            return (answer["hosts"]?.arrayValue ?? []).map { host in
                "\(host["ip_address"]?.stringValue ?? "?"):\(host["port"]?.numberText ?? "?")"
            }.sorted()
        }

        func health(_ service: String) -> [String] {
            bridge.registry.endpoints(of: service).map { "\($0.address) \($0.health.rawValue)" }
        }

        func ready() async throws -> Bool {
            try await http.send(HTTPClientRequest(url: base + "/readyz")).status == 200
        }
    }

    static func slice(_ name: String, service: String, _ endpoints: [(String, ready: Bool, terminating: Bool)]) -> JSON {
        ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": ["name": .string(name), "namespace": "shop",
                      "labels": ["kubernetes.io/service-name": .string(service),
                                 "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"]],
         "addressType": "IPv4", "ports": [["name": "http", "port": 8080, "protocol": "TCP"]],
         "endpoints": .array(endpoints.map { endpoint in
            ["addresses": [.string(endpoint.0)],
             "conditions": ["ready": .bool(endpoint.ready), "serving": true, "terminating": .bool(endpoint.terminating)]]
         })]
    }

    static func service(_ name: String, targetPort: Int = 8080) -> JSON {
        ["apiVersion": "v1", "kind": "Service", "metadata": ["name": .string(name), "namespace": "shop"],
         "spec": ["selector": ["app": .string(name)], "ports": [["name": "http", "port": 80, "targetPort": .integer(targetPort), "protocol": "TCP"]]]]
    }

    /// Mirrored objects the API server holds, by path.
    static func mirrored(_ fixture: KubeFixture) -> [String] {
        ["\(services)/billing", "\(slices)/billing-tandem-ipv4-8080", "\(slices)/web-tandem-ipv4-8080"]
            .filter { fixture.server.object($0) != nil }
    }

    @Test func podsScaleUpAndDownThroughTerminatingEndpoints() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed(Self.services, Self.service("web"))
        fixture.server.seed(Self.slices, Self.slice("web-abc", service: "web", [("192.0.2.1", true, false)]))
        let replica = try await Replica(fixture)
        #expect(await eventually { (try? await replica.ready()) == true })
        #expect(try await replica.hosts("web") == ["192.0.2.1:8080"])

        fixture.server.seed(Self.slices, Self.slice("web-abc", service: "web", [("192.0.2.1", true, false), ("192.0.2.2", true, false)]))
        #expect(await eventually { replica.health("web") == ["192.0.2.1 HEALTHY", "192.0.2.2 HEALTHY"] })
        fixture.server.seed(Self.slices, Self.slice("web-abc", service: "web", [("192.0.2.1", true, false), ("192.0.2.2", false, true)]))
        #expect(await eventually { replica.health("web") == ["192.0.2.1 HEALTHY", "192.0.2.2 DRAINING"] })
        fixture.server.seed(Self.slices, Self.slice("web-abc", service: "web", [("192.0.2.1", true, false)]))
        #expect(await eventually { replica.health("web") == ["192.0.2.1 HEALTHY"] })
        fixture.server.remove(Self.slices + "/web-abc")
        #expect(await eventually { replica.health("web").isEmpty })
        await replica.stop()
        await fixture.stop()
    }

    @Test func aCompactedHistoryAndAnAPIServerRestartLoseNothing() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed(Self.slices, Self.slice("web-abc", service: "web", [("192.0.2.1", true, false)]))
        fixture.server.seed(Self.slices, Self.slice("old-abc", service: "old", [("192.0.2.9", true, false)]))
        let replica = try await Replica(fixture)
        #expect(await eventually { replica.health("old") == ["192.0.2.9 HEALTHY"] })

        // The API server goes away; meanwhile a slice is deleted and another changes, and the
        // history is compacted past the watch's version: the reconnect must relist.
        await fixture.server.stopServing()
        fixture.server.remove(Self.slices + "/old-abc")
        fixture.server.seed(Self.slices, Self.slice("web-abc", service: "web", [("192.0.2.1", true, false), ("192.0.2.3", true, false)]))
        fixture.server.compact(upTo: fixture.server.resourceVersion)
        try await fixture.server.startServing()
        #expect(await eventually(timeout: .seconds(10)) { replica.health("web") == ["192.0.2.1 HEALTHY", "192.0.2.3 HEALTHY"] })
        #expect(replica.health("old").isEmpty)
        let lists = fixture.server.requestTargets.filter { $0.hasPrefix("GET \(Self.slices)") && !$0.contains("watch=") }
        #expect(lists.count >= 2, "the expired watch was followed by a relist: \(lists)")
        await replica.stop()
        await fixture.stop()
    }

    @Test func legacyHostsAreWrittenBackAndCleanedUp() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed(Self.services, Self.service("web"))
        let replica = try await Replica(fixture, ttl: 2)
        #expect(await eventually { replica.sync.isWriter })

        // A service only legacy hosts have gets a selector-less Service and a slice.
        #expect(try await replica.register("billing", "198.51.100.9").status == 200)
        #expect(await eventually { Self.mirrored(fixture).count == 2 })
        let service = try #require(fixture.server.object(Self.services + "/billing"))
        #expect(service["spec"]?["selector"] == nil)
        let slice = try #require(fixture.server.object(Self.slices + "/billing-tandem-ipv4-8080").flatMap(EndpointSlice.init))
        #expect(slice.managedBy == "bridge.tandem.io" && slice.endpoints.map(\.addresses) == [["198.51.100.9"]])

        // A legacy host of a service pods already have joins it under its port name.
        #expect(try await replica.register("web", "198.51.100.7").status == 200)
        #expect(await eventually { fixture.server.object(Self.slices + "/web-tandem-ipv4-8080") != nil })
        let joined = try #require(fixture.server.object(Self.slices + "/web-tandem-ipv4-8080").flatMap(EndpointSlice.init))
        #expect(joined.ports.map(\.name) == ["http"])
        #expect(fixture.server.object(Self.services + "/web")?["spec"]?["selector"] != nil, "the pods' Service is left alone")

        // Deregistration removes what was written; silence past the TTL does too. A heartbeat
        // first, so that a slow machine has not expired the host before it is deregistered.
        #expect(try await replica.register("billing", "198.51.100.9").status == 200)
        #expect(try await replica.deregister("billing", "198.51.100.9").status == 200)
        #expect(await eventually { Self.mirrored(fixture) == ["\(Self.slices)/web-tandem-ipv4-8080"] })
        #expect(await eventually(timeout: .seconds(5)) { Self.mirrored(fixture).isEmpty }, "web's legacy host expired")
        #expect(replica.health("web").isEmpty)
        await replica.stop()
        await fixture.stop()
    }

    @Test func aRestartedBridgeRebuildsLegacyHostsFromTheAPI() async throws {
        let fixture = try await KubeFixture.start()
        let first = try await Replica(fixture)
        #expect(await eventually { first.sync.isWriter })
        #expect(try await first.register("billing", "198.51.100.9").status == 200)
        #expect(await eventually { Self.mirrored(fixture).count == 2 })
        await first.stop()

        let second = try await Replica(fixture)
        #expect(await eventually { second.sync.isWriter })
        #expect(try await second.hosts("billing") == ["198.51.100.9:8080"])
        guard case .legacy(let revision, _, let tags, _) = second.bridge.registry.endpoints(of: "billing").first?.origin else {
            Issue.record("the host did not come back as a legacy registration")
            await second.stop()
            await fixture.stop()
            return
        }
        #expect(revision == "r1" && tags == ["az": "z1"])
        #expect(Self.mirrored(fixture).count == 2)
        #expect(!fixture.server.requests.contains { $0.hasPrefix("DELETE") || $0.hasPrefix("PATCH") },
                "what the API held was taken over, not deleted and written again")
        await second.stop()
        await fixture.stop()
    }

    @Test func twoReplicasHaveOneWriterAndTheOtherFollows() async throws {
        let fixture = try await KubeFixture.start()
        let a = try await Replica(fixture)
        let b = try await Replica(fixture)
        #expect(await eventually { a.sync.isWriter != b.sync.isWriter && a.bridge.writer != .unknown && b.bridge.writer != .unknown })
        let (writer, standby) = a.sync.isWriter ? (a, b) : (b, a)
        #expect(standby.bridge.writer == .other(address: String(writer.base.dropFirst("http://".count))))

        // A registration at the standby is forwarded to the writer, which applies and mirrors
        // it; the standby then serves it too.
        #expect(try await standby.register("billing", "198.51.100.9").status == 200)
        #expect(writer.bridge.registry.endpoints(of: "billing").map(\.address) == ["198.51.100.9"])
        #expect(await eventually { (try? await standby.hosts("billing")) == ["198.51.100.9:8080"] })
        let writes = fixture.server.requests.filter { request in
            !request.hasPrefix("GET ") && (request.contains("/endpointslices") || request.contains("/services"))
        }
        #expect(writes.count == 2, "one Service and one slice, written once: \(writes)")

        // The writer stops (releasing the Lease): the standby takes over, keeps the host, and
        // applies new registrations itself.
        await writer.stop()
        #expect(await eventually(timeout: .seconds(5)) { standby.sync.isWriter })
        #expect(try await standby.hosts("billing") == ["198.51.100.9:8080"])
        #expect(try await standby.register("billing", "198.51.100.10").status == 200)
        #expect(await eventually {
            fixture.server.object(Self.slices + "/billing-tandem-ipv4-8080").flatMap(EndpointSlice.init)?.endpoints.count == 2
        })
        await standby.stop()
        await fixture.stop()
    }
}
