import Foundation
import Glibc
import Testing
import TestSupport
@testable import Lifecycle
import Net

/// The real `tandem proxy` and `tandem supervise` stopping together, with real signals, as the
/// kubelet stops a pod. One in-process server plays both the app's server socket (behind the
/// proxy's inbound listener) and another service (behind its outbound listener), and records
/// when each call arrived; a `/bin/sh` script plays the app's lifecycle.
@Suite struct PodShutdownTests {
    let folder: TestFolder
    let marker: String

    init() throws {
        folder = try TestFolder()
        marker = folder.path("app-exited")
    }

    struct Ports {
        let inbound = unusedPort(), outbound = unusedPort(), admin = unusedPort()
    }

    /// `tandem proxy` with an inbound and an outbound listener in front of `service`, ready.
    func startProxy(_ service: FakeAdmin, environment: [String: String], drainSeconds: Int) async throws -> (TandemRun, Ports) {
        let ports = Ports()
        let config = folder.path("proxy.yaml")
        try """
        listeners:
          - {name: inbound, address: "127.0.0.1:\(ports.inbound)", routes: [{cluster: app}]}
          - {name: outbound, address: "127.0.0.1:\(ports.outbound)", direction: outbound, routes: [{cluster: other}]}
        clusters:
          - {name: app, endpoints: [{address: "127.0.0.1:\(service.port)"}]}
          - {name: other, endpoints: [{address: "127.0.0.1:\(service.port)"}]}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let proxy = try TandemRun(["proxy", "--config", config, "--admin", "127.0.0.1:\(ports.admin)", "--drain-seconds", "\(drainSeconds)"],
                                  environment: environment, in: folder)
        #expect(await eventually { await status(ports.admin, "/ready") == 200 }, "\(proxy.log)")
        return (proxy, ports)
    }

    /// The status of one GET on a new connection; nil when nothing accepts it. Made on a
    /// Dispatch thread: blocking calls on the concurrency pool (two threads here) stall every
    /// test sharing it, and a starved poll missed the proxy's 2 s drain delay whole.
    func status(_ port: Int, _ path: String) async -> Int? {
        try? await offThePool { (try? RawClient(port: port, receiveTimeout: .seconds(2)))?.get(path)?.head.status }
    }

    /// Legacy mode: the kubelet sends SIGTERM to the proxy and the app at once. The proxy fails
    /// readiness but serves on; the supervisor holds the app's SIGTERM for the drain delay; the
    /// app calls out through the proxy while it shuts down (past the proxy's own delay); only
    /// once the app has exited is the proxy told to quit, and it drains and exits.
    @Test func legacySigtermTogetherKeepsBothServingUntilTheAppHasExited() async throws {
        let service = try await FakeAdmin(marker: marker, ready: true)
        let (proxy, ports) = try await startProxy(service, environment: ["TANDEM_LIFECYCLE": "legacy", "TANDEM_DRAIN_DELAY_SECONDS": "1"],
                                                  drainSeconds: 20)
        let call = "curl -s -o /dev/null http://127.0.0.1:\(ports.outbound)"
        let script = """
        trap '\(call)/outbound; sleep 0.3; \(call)/outbound; touch \(marker); exit 0' TERM
        \(call)/started
        while :; do sleep 1 & wait $!; done
        """
        let admin = "http://127.0.0.1:\(ports.admin)"
        let app = try TandemRun(["supervise", "--ready-url", admin + "/ready", "--quit-url", admin + "/quitquitquit", "--quit-on", "stop",
                                 "--drain-delay", "1", "--", "/bin/sh", "-c", script], in: folder)
        #expect(await eventually { !service.calls("/started").isEmpty })

        let signalled = NanoTime.now()
        proxy.signal(SIGTERM)
        app.signal(SIGTERM)
        #expect(await eventually { await status(ports.admin, "/ready") == 503 }, "readiness fails at once: \(proxy.log)")
        // Endpoint removal has not reached every client: their requests are still served, and
        // each client is told to reconnect (to another pod, once removal reaches it).
        let inbound = try? await offThePool { try RawClient(port: ports.inbound).get("/inbound") }
        #expect(inbound?.head.status == 200, "\(NanoTime.now().nanoseconds - signalled.nanoseconds) ns after SIGTERM; proxy: \(proxy.log) app: \(app.log)")
        #expect(inbound?.head.headers["connection"] == "close")

        #expect(await app.wait(timeout: .seconds(20)) == .exited(code: 0))
        #expect(await proxy.wait(timeout: .seconds(20)) == .exited(code: 0))
        let outbound = service.calls("/outbound")
        #expect(outbound.count == 2, "both calls out during the app's shutdown got through")
        #expect(outbound.allSatisfy { milliseconds(from: signalled, to: $0.at) >= 1000 && !$0.appHadExited })
        #expect(proxy.log.contains("quitquitquit: the app has exited"), "\(proxy.log)")
        #expect(!proxy.log.contains("deadline reached"))
        #expect(app.log.contains("drain delay over; passing the stop signal to the app"))
        await service.stop()
    }

    /// A legacy proxy whose app never says it has exited still stops, at its deadline, and
    /// serves outbound calls until then.
    @Test func legacyProxyWithoutAQuitStopsAtItsDeadline() async throws {
        let service = try await FakeAdmin(marker: marker, ready: true)
        // A deadline long enough for the checks below on a busy machine (3 s was not, at load 6).
        let (proxy, ports) = try await startProxy(service, environment: ["TANDEM_LIFECYCLE": "legacy"], drainSeconds: 8)
        let signalled = NanoTime.now()
        proxy.signal(SIGTERM)
        #expect(await eventually { await status(ports.admin, "/ready") == 503 })
        #expect(await status(ports.outbound, "/outbound") == 200)
        #expect(await proxy.wait(timeout: .seconds(20)) == .exited(code: 0))
        #expect(milliseconds(from: signalled, to: .now()) >= 8000)
        #expect(proxy.log.contains("drain deadline reached before the app exited"), "\(proxy.log)")
        await service.stop()
    }

    /// Native or standalone: SIGTERM means the app is gone. With a drain delay the proxy still
    /// accepts for that long, then stops accepting, lets idle keep-alive clients go and exits.
    @Test func drainDelayKeepsAcceptingThenTheProxyDrainsAndExits() async throws {
        let service = try await FakeAdmin(marker: marker, ready: true)
        let (proxy, ports) = try await startProxy(service, environment: ["TANDEM_DRAIN_DELAY_SECONDS": "2"], drainSeconds: 5)
        let idle = try RawClient(port: ports.inbound)
        #expect(idle.get("/inbound")?.head.status == 200)
        let signalled = NanoTime.now()
        proxy.signal(SIGTERM)
        #expect(await status(ports.inbound, "/inbound") == 200, "new connections during the delay")
        #expect(await eventually { await status(ports.admin, "/ready") == 503 })
        #expect(await proxy.wait() == .exited(code: 0))
        let elapsed = milliseconds(from: signalled, to: .now())
        // The deadline is 7 s: exiting before it means the idle keep-alive connection was let go.
        #expect(elapsed >= 2000 && elapsed < 6000, "exited \(elapsed) ms after SIGTERM")
        #expect(proxy.log.contains("SIGTERM: readiness fails; serving for 2s while endpoint removal propagates"))
        await service.stop()
    }
}
