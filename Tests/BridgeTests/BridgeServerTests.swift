import Bridge
import Document
import Foundation
import Net
import Synchronization
import Testing
import TestSupport

/// The bridge over real sockets on loopback.
@Suite(.serialized) struct BridgeServerTests {
    private struct Running {
        let group: EventLoopGroup
        let bridge: BridgeServer
        let client: HTTPClient
        let base: String

        func stop() async {
            await client.closeIdleConnections()
            await bridge.shutdown()
            group.shutdown()
        }
    }

    private func start(ttl: Double = 600, longPoll: Duration = .seconds(5), clock: @escaping @Sendable () -> Double = BridgeServer.wallClock) async throws -> Running {
        let group = try EventLoopGroup(threads: 2)
        let bridge = BridgeServer(configuration: BridgeConfiguration(tokens: ["t0k3n"], environment: "test", ttl: ttl,
                                                                     longPollTimeout: longPoll, sweepInterval: .milliseconds(20)),
                                  group: group, clock: clock)
        try await bridge.start()
        let port = try #require(bridge.localAddress?.port)
        return Running(group: group, bridge: bridge, client: HTTPClient(loop: group.next()), base: "http://127.0.0.1:\(port)")
    }

    private func register(_ running: Running, _ service: String, _ form: String, token: String = "t0k3n") async throws -> HTTPClientResponse {
        try await running.client.send(HTTPClientRequest(method: .post, url: running.base + "/v1/registration/" + service,
                                                        headers: ["Content-Type": "application/x-www-form-urlencoded",
                                                                  "Authorization": "Bearer " + token],
                                                        body: Array(form.utf8)))
    }

    @Test func legacyHostRegistersAndIsListed() async throws {
        let running = try await start()
        #expect(try await register(running, "web", "ip=198.51.100.1&port=80&revision=r1", token: "nope").status == 401)
        #expect(try await register(running, "web", "ip=198.51.100.1&port=80&revision=r1").status == 200)
        let listed = try await running.client.send(HTTPClientRequest(url: running.base + "/v1/registration/web"))
        let answer = try JSONReader.parse(listed.body)
        #expect(answer["env"] == "test")
        #expect(answer["hosts"]?.arrayValue?.first?["ip_address"] == "198.51.100.1")
        let page = try await running.client.send(HTTPClientRequest(url: running.base + "/"))
        #expect(String(decoding: page.body, as: UTF8.self).contains("198.51.100.1:80"))
        let metrics = String(decoding: try await running.client.send(HTTPClientRequest(url: running.base + "/metrics")).body, as: UTF8.self)
        for line in ["tandem_bridge_services 1", #"tandem_bridge_endpoints{origin="legacy",health="HEALTHY"} 1"#,
                     #"tandem_bridge_requests_total{method="POST",status="200"} 1"#,
                     #"tandem_bridge_requests_total{method="POST",status="401"} 1"#,
                     #"tandem_bridge_requests_total{method="GET",status="200"} 1"#, "tandem_bridge_watchers 0"] {
            #expect(metrics.contains(line + "\n"), "missing \(line) in\n\(metrics)")
        }
        await running.stop()
    }

    @Test func longPollWakesOnChangeAndTimesOutWithTheSameVersion() async throws {
        // Long enough that a registration on a loaded machine lands before the poll gives up.
        let running = try await start(longPoll: .seconds(2))
        #expect(try await register(running, "api", "ip=198.51.100.2&port=90&revision=r").status == 200)
        let first = try JSONReader.parse(try await running.client.send(HTTPClientRequest(url: running.base + "/v1/watch/api")).body)
        let version = try #require(first["version"]?.stringValue)

        let waiter = HTTPClient(loop: running.group.next())
        async let woken = waiter.send(HTTPClientRequest(url: running.base + "/v1/watch/api?version=" + version))
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await register(running, "api", "ip=198.51.100.3&port=90&revision=r").status == 200)
        let changed = try JSONReader.parse(try await woken.body)
        #expect(changed["version"]?.stringValue != version)
        #expect(changed["service"] == "api")
        #expect(changed["endpoints"]?.arrayValue?.map { $0["address"] } == ["198.51.100.2", "198.51.100.3"])
        #expect(changed["endpoints"]?.arrayValue?.allSatisfy { $0["port"] == 90 && $0["health"] == "HEALTHY" } == true)

        let latest = try #require(changed["version"]?.stringValue)
        let started = ContinuousClock.now
        let idle = try JSONReader.parse(try await waiter.send(HTTPClientRequest(url: running.base + "/v1/watch/api?version=" + latest)).body)
        #expect(idle["version"]?.stringValue == latest)
        #expect(ContinuousClock.now - started >= .milliseconds(1900))
        await waiter.closeIdleConnections()
        await running.stop()
    }

    @Test func aVersionFromAnEarlierRunIsAnsweredAtOnce() async throws {
        // A proxy that followed the bridge before it restarted holds a version of that run.
        let earlier = try await start(longPoll: .seconds(30))
        #expect(try await register(earlier, "api", "ip=198.51.100.2&port=90&revision=r").status == 200)
        let held = try #require(try JSONReader.parse(try await earlier.client.send(HTTPClientRequest(url: earlier.base + "/v1/watch/api")).body)["version"]?.stringValue)
        await earlier.stop()
        try await Task.sleep(for: .milliseconds(5))

        let running = try await start(longPoll: .seconds(30))
        #expect(try await register(running, "api", "ip=198.51.100.3&port=90&revision=r").status == 200)
        let current = running.bridge.registry.version(of: "api")
        #expect(String(current) != held, "one change in each run, yet the versions differ")
        // Older (an earlier run) or newer (another replica, a clock set back): either is news.
        for version in [held, String(current + 1000)] {
            let started = ContinuousClock.now
            let answer = try JSONReader.parse(try await running.client.send(HTTPClientRequest(url: running.base + "/v1/watch/api?version=" + version)).body)
            #expect(ContinuousClock.now - started < .seconds(5), "not parked until the long-poll timeout")
            #expect(answer["version"]?.stringValue == String(current))
            #expect(answer["endpoints"]?.arrayValue?.map { $0["address"] } == ["198.51.100.3"])
        }
        await running.stop()
    }

    @Test func silentHostsAreSweptActively() async throws {
        let now = Mutex<Double>(1000)
        let running = try await start(ttl: 30, clock: { now.withLock { $0 } })
        #expect(try await register(running, "db", "ip=198.51.100.5&port=5432&revision=r").status == 200)
        let waiter = HTTPClient(loop: running.group.next())
        let version = String(running.bridge.registry.version(of: "db"))
        async let expired = waiter.send(HTTPClientRequest(url: running.base + "/v1/watch/db?version=" + version))
        try await Task.sleep(for: .milliseconds(50))
        now.withLock { $0 = 1031 }
        let answer = try JSONReader.parse(try await expired.body)
        #expect(answer["endpoints"] == [])
        #expect(running.bridge.registry.services.isEmpty)
        let metrics = String(decoding: try await running.client.send(HTTPClientRequest(url: running.base + "/metrics")).body, as: UTF8.self)
        #expect(metrics.contains("tandem_bridge_expired_total 1\n"))
        await waiter.closeIdleConnections()
        await running.stop()
    }

    @Test func aStandbyForwardsWritesToTheWriter() async throws {
        let writer = try await start()
        let standby = try await start()
        let writerAddress = String(writer.base.dropFirst("http://".count))
        standby.bridge.setWriter(.other(address: writerAddress))
        // The writer's answer comes back through the standby, refusals included; only the
        // writer's registry changes.
        #expect(try await register(standby, "web", "ip=198.51.100.1&port=80&revision=r1", token: "nope").status == 401)
        let forwarded = try await register(standby, "web", "ip=198.51.100.1&port=80&revision=r1")
        #expect(forwarded.status == 200)
        #expect(forwarded.head.headers["Content-Type"] == "application/json")
        #expect(writer.bridge.registry.endpoints(of: "web").map(\.address) == ["198.51.100.1"])
        #expect(standby.bridge.registry.services.isEmpty)
        let deleted = try await standby.client.send(HTTPClientRequest(method: .delete, url: standby.base + "/v1/registration/web/198.51.100.1",
                                                                      headers: ["Authorization": "Bearer t0k3n"]))
        #expect(deleted.status == 200)
        #expect(writer.bridge.registry.services.isEmpty)
        let metrics = String(decoding: try await standby.client.send(HTTPClientRequest(url: standby.base + "/metrics")).body, as: UTF8.self)
        #expect(metrics.contains(#"tandem_bridge_requests_total{method="POST",status="200"} 1"# + "\n"), "\(metrics)")

        // Two replicas that each think the other writes do not bounce a write between them.
        writer.bridge.setWriter(.other(address: String(standby.base.dropFirst("http://".count))))
        let bounced = try await register(standby, "web", "ip=198.51.100.1&port=80&revision=r1")
        #expect(bounced.status == 503)
        #expect(String(decoding: bounced.body, as: UTF8.self).contains("retry in a second"))

        // A writer out of reach: the standby refuses in bounded time, and keeps serving.
        let unreachable = RefusingPort()
        defer { unreachable.close() }
        standby.bridge.setWriter(.other(address: unreachable.address))
        let started = ContinuousClock.now
        #expect(try await register(standby, "web", "ip=198.51.100.1&port=80&revision=r1").status == 503)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await standby.client.send(HTTPClientRequest(url: standby.base + "/v1/registration/web")).status == 200)
        await standby.stop()
        await writer.stop()
    }

    @Test func oversizedRegistrationIsRefusedAndTheServerKeepsServing() async throws {
        let running = try await start()
        let huge = "ip=198.51.100.1&port=80&revision=" + String(repeating: "x", count: 100_000)
        let refused = try await register(running, "web", huge)
        #expect(refused.status == 413)
        #expect(String(decoding: refused.body, as: UTF8.self) == #"{"error":"a registration body may hold at most 65536 bytes"}"# + "\n")
        let beyondServerCap = try await register(running, "web", huge + String(repeating: "y", count: 1 << 20))
        #expect(beyondServerCap.status == 413)
        #expect(try await register(running, "web", "ip=198.51.100.1&port=80&revision=r").status == 200)
        await running.stop()
    }
}
