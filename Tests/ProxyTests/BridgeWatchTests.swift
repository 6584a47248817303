import Testing
@testable import Proxy

@Suite struct BridgeAnswerTests {
    @Test func healthDecidesWhatTheProxyDoes() throws {
        let answer = try BridgeAnswer.decode(Array("""
            {"version":"17","service":"web","endpoints":[
              {"address":"10.0.0.1","port":80,"health":"HEALTHY","origin":"kubernetes","slice":"web-x"},
              {"address":"10.0.0.2","port":80,"health":"DRAINING","origin":"kubernetes","slice":"web-x"},
              {"address":"10.0.0.3","port":80,"health":"UNHEALTHY"},
              {"address":"2001:db8::1","port":8080,"health":"HEALTHY","zone":"a"},
              {"address":"10.0.0.2","port":80,"health":"HEALTHY","origin":"legacy","revision":"r1"}]}
            """.utf8))
        #expect(answer.version == "17")
        #expect(answer.endpoints == [
            .init(HostPort(host: "10.0.0.1", port: 80)),
            // Draining in its slice, but registered by hand as well: it serves.
            .init(HostPort(host: "10.0.0.2", port: 80)),
            .init(HostPort(host: "2001:db8::1", port: 8080)),
        ])
        let draining = try BridgeAnswer.decode(Array(#"{"version":"3","endpoints":[{"address":"10.0.0.2","port":80,"health":"DRAINING"}]}"#.utf8))
        #expect(draining.endpoints == [.init(HostPort(host: "10.0.0.2", port: 80), terminating: true)])
    }

    @Test(arguments: [
        (#"{"endpoints":[]}"#, "version: must be a decimal number"),
        (#"{"version":"1&x=2","endpoints":[]}"#, "version: must be a decimal number"),
        (#"{"version":"1"}"#, "endpoints: must be a list"),
        (#"[]"#, "must be an object, not an array"),
        (#"{"version":"1","endpoints":[{"address":"web.local","port":80,"health":"HEALTHY"}]}"#, "endpoints[0].address: must be an IP address"),
        (#"{"version":"1","endpoints":[{"address":"10.0.0.1","port":0,"health":"HEALTHY"}]}"#, "endpoints[0].port: must be a port from 1 to 65535"),
        (#"{"version":"1","endpoints":[{"address":"10.0.0.1","port":80,"health":"DEGRADED"}]}"#, "endpoints[0].health: must be HEALTHY, DRAINING or UNHEALTHY"),
    ])
    func refusesWhatItCannotUse(body: String, message: String) {
        #expect(throws: ConfigError.self) { try BridgeAnswer.decode(Array(body.utf8)) }
        do { _ = try BridgeAnswer.decode(Array(body.utf8)) } catch { #expect(error.description == message) }
    }

    @Test func notJSONSaysSo() {
        do {
            _ = try BridgeAnswer.decode([])
            Issue.record("an empty body decoded")
        } catch {
            #expect(error.description.hasPrefix("not JSON: "))
        }
    }
}

@Suite struct BridgeWatchTests {
    static let source = ProxyConfig.BridgeService(bridge: "http://10.1.0.9:8090/", service: "web")
    static let ms: Int64 = 1_000_000

    static func body(_ version: String, _ endpoints: [(String, String)]) -> [UInt8] {
        let items = endpoints.map { #"{"address":"\#($0.0)","port":80,"health":"\#($0.1)"}"# }
        return Array(#"{"version":"\#(version)","endpoints":[\#(items.joined(separator: ","))]}"#.utf8)
    }

    static func endpoint(_ host: String, terminating: Bool = false) -> ProxyConfig.Endpoint {
        .init(HostPort(host: host, port: 80), terminating: terminating)
    }

    func logs(_ actions: [BridgeWatch.Action]) -> [String] {
        actions.compactMap { if case .log(_, let line) = $0 { line } else { nil } }
    }

    func applied(_ actions: [BridgeWatch.Action]) -> [ProxyConfig.Endpoint]? {
        for case .apply(let endpoints) in actions { return endpoints }
        return nil
    }

    func delay(_ actions: [BridgeWatch.Action]) -> Int64? {
        for case .poll(let delay) in actions { return delay }
        return nil
    }

    @Test func followsChangesAndSendsTheVersionBack() {
        var watch = BridgeWatch(cluster: "app", source: Self.source)
        #expect(watch.url == "http://10.1.0.9:8090/v1/watch/web")

        let first = watch.answered(status: 200, body: Self.body("5", [("10.0.0.1", "HEALTHY")]), elapsed: 50 * Self.ms, random: 0)
        #expect(applied(first) == [Self.endpoint("10.0.0.1")])
        #expect(logs(first).contains("tandem proxy: cluster app follows service web at http://10.1.0.9:8090/: 1 endpoints"))
        #expect(delay(first) == 150 * Self.ms, "at most one poll per 200 ms")
        #expect(watch.url == "http://10.1.0.9:8090/v1/watch/web?version=5")

        // The long-poll timed out: same version, nothing to do, poll again at once.
        let idle = watch.answered(status: 200, body: Self.body("5", [("10.0.0.1", "HEALTHY")]), elapsed: 30_000 * Self.ms, random: 0)
        #expect(idle == [.poll(afterNanoseconds: 0)])

        // A heartbeat is a new version with the same endpoints: no update.
        let heartbeat = watch.answered(status: 200, body: Self.body("6", [("10.0.0.1", "HEALTHY")]), elapsed: 300 * Self.ms, random: 0)
        #expect(heartbeat == [.poll(afterNanoseconds: 0)])
        #expect(watch.version == "6")

        let draining = watch.answered(status: 200, body: Self.body("7", [("10.0.0.1", "DRAINING"), ("10.0.0.2", "HEALTHY"), ("10.0.0.3", "UNHEALTHY")]),
                                      elapsed: 300 * Self.ms, random: 0)
        #expect(applied(draining) == [Self.endpoint("10.0.0.1", terminating: true), Self.endpoint("10.0.0.2")])
        #expect(logs(draining) == ["tandem proxy: cluster app: 2 endpoints (1 draining) from service web, version 7"])
    }

    @Test func failuresKeepTheEndpointsLogOnceAndBackOff() {
        var watch = BridgeWatch(cluster: "app", source: Self.source)
        _ = watch.answered(status: 200, body: Self.body("5", [("10.0.0.1", "HEALTHY"), ("10.0.0.2", "HEALTHY")]), elapsed: 0, random: 0)

        let refused = watch.failed("connect: Connection refused", random: 0)
        #expect(logs(refused) == ["tandem proxy: cluster app: bridge http://10.1.0.9:8090/ unreachable (connect: Connection refused); keeping 2 endpoints, retrying with backoff"])
        #expect(applied(refused) == nil)
        #expect(delay(refused) == 125 * Self.ms)
        let serverError = watch.answered(status: 503, body: [], elapsed: 0, random: 0)
        #expect(logs(serverError).isEmpty, "the same state again is not logged again")
        #expect(delay(serverError) == 250 * Self.ms)
        let garbage = watch.answered(status: 200, body: Array("<html>".utf8), elapsed: 0, random: 0)
        #expect(logs(garbage).isEmpty && applied(garbage) == nil)
        #expect(watch.consecutiveFailures == 3 && watch.endpoints?.count == 2)
        #expect(watch.url.hasSuffix("?version=5"), "polls resume from the last good version")

        let back = watch.answered(status: 200, body: Self.body("5", [("10.0.0.1", "HEALTHY"), ("10.0.0.2", "HEALTHY")]), elapsed: 0, random: 0)
        #expect(logs(back) == ["tandem proxy: cluster app: bridge http://10.1.0.9:8090/ answers again, following service web: 2 endpoints"])
        #expect(watch.consecutiveFailures == 0)
        #expect(delay(watch.failed("timed out", random: 0)) == 125 * Self.ms, "the backoff starts over")
    }

    @Test func aBridgeThatForgotTheServiceDoesNotEmptyTheCluster() {
        var watch = BridgeWatch(cluster: "app", source: Self.source)
        _ = watch.answered(status: 200, body: Self.body("1722000000005", [("10.0.0.1", "HEALTHY")]), elapsed: 0, random: 0)
        // The bridge restarted and its hosts have not checked in yet.
        let forgotten = watch.answered(status: 200, body: Self.body("0", []), elapsed: 0, random: 0)
        #expect(applied(forgotten) == nil)
        #expect(logs(forgotten) == ["tandem proxy: cluster app: bridge http://10.1.0.9:8090/ does not know service web; keeping 1 endpoints"])
        #expect(watch.url.hasSuffix("?version=0"), "then waits for the service to appear")
        let back = watch.answered(status: 200, body: Self.body("1722000009001", [("10.0.0.4", "HEALTHY")]), elapsed: 0, random: 0)
        #expect(applied(back) == [Self.endpoint("10.0.0.4")])
        // Scaled to zero is news, and applied.
        let zero = watch.answered(status: 200, body: Self.body("1722000009002", []), elapsed: 0, random: 0)
        #expect(applied(zero) == [])
    }

    @Test func unreachableFromTheStartSaysThereIsNothingYet() {
        var watch = BridgeWatch(cluster: "app", source: Self.source)
        #expect(logs(watch.failed("connect: Connection refused", random: 0.5)) == [
            "tandem proxy: cluster app: bridge http://10.1.0.9:8090/ unreachable (connect: Connection refused); no endpoints from it yet, retrying with backoff",
        ])
    }

    @Test func backoffDoublesWithJitterUpToTheCap() {
        let timing = BridgeWatch.Timing()
        var previousLow: Int64 = 0
        for failures in 1...40 {
            let low = BridgeWatch.backoff(failures: failures, timing: timing, random: 0)
            let high = BridgeWatch.backoff(failures: failures, timing: timing, random: 0.999_999)
            #expect(low >= previousLow, "never shorter after another failure")
            #expect(low < high && high <= 2 * low, "half fixed, half jitter")
            #expect(high <= timing.maximumBackoff)
            previousLow = low
        }
        #expect(BridgeWatch.backoff(failures: 1, timing: timing, random: 0) == 125 * Self.ms)
        #expect(BridgeWatch.backoff(failures: 4, timing: timing, random: 0) == 1_000 * Self.ms)
        #expect(BridgeWatch.backoff(failures: 40, timing: timing, random: 0) == 15_000 * Self.ms)
        #expect(BridgeWatch.backoff(failures: Int.max, timing: timing, random: 1) == 30_000 * Self.ms)
    }
}
