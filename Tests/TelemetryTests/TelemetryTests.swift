import Document
import Glibc
import Synchronization
import Telemetry
import Testing

struct MetricsTests {
    @Test func exposesCountersGaugesAndHistogramsInDeclarationOrder() {
        let registry = MetricsRegistry()
        let requests = registry.counter("tandem_requests_total", help: "Requests by outcome.", labels: ["outcome", "reason"])
        let reloads = registry.counter("tandem_reloads_total", help: "Reloads.")
        let enabled = registry.gauge("tandem_enabled", help: "1 when on.")
        let latency = registry.histogram("tandem_latency_seconds", help: "Latency.", labels: ["route"], buckets: [0.01, 0.1])
        requests.increment("patched", "injected")
        requests.increment("patched", "injected")
        requests.increment("allowed", "opted_out_annotation")
        enabled.set(1)
        latency.observe(0.005, "/inject")
        latency.observe(0.05, "/inject")
        latency.observe(3, "/inject")
        #expect(registry.exposition() == """
            # HELP tandem_requests_total Requests by outcome.
            # TYPE tandem_requests_total counter
            tandem_requests_total{outcome="allowed",reason="opted_out_annotation"} 1
            tandem_requests_total{outcome="patched",reason="injected"} 2
            # HELP tandem_reloads_total Reloads.
            # TYPE tandem_reloads_total counter
            tandem_reloads_total 0
            # HELP tandem_enabled 1 when on.
            # TYPE tandem_enabled gauge
            tandem_enabled 1
            # HELP tandem_latency_seconds Latency.
            # TYPE tandem_latency_seconds histogram
            tandem_latency_seconds_bucket{route="/inject",le="0.01"} 1
            tandem_latency_seconds_bucket{route="/inject",le="0.1"} 2
            tandem_latency_seconds_bucket{route="/inject",le="+Inf"} 3
            tandem_latency_seconds_sum{route="/inject"} 3.055
            tandem_latency_seconds_count{route="/inject"} 3

            """)
        _ = reloads
        #expect(requests.value("patched", "injected") == 2)
        #expect(latency.count("/inject") == 3)
    }

    @Test func alternatingSeriesKeepTheirOwnCounts() {
        let registry = MetricsRegistry()
        let requests = registry.counter("requests_total", help: "Requests.", labels: ["outcome", "reason"])
        let latency = registry.histogram("latency_seconds", help: "Latency.", labels: ["outcome"], buckets: [1])
        for (outcome, reason) in [("patched", "injected"), ("allowed", "opted_out"), ("allowed", "opted_out"),
                                  ("patched", "injected"), ("allowed", "injected"), ("patched", "injected")] {
            requests.increment(outcome, reason)
            latency.observe(0.5, outcome)
        }
        #expect(requests.value("patched", "injected") == 3)
        #expect(requests.value("allowed", "opted_out") == 2)
        #expect(requests.value("allowed", "injected") == 1)
        #expect(requests.value("denied", "injected") == 0)
        #expect(latency.count("patched") == 3)
        #expect(latency.count("allowed") == 3)
    }

    @Test func escapesLabelValuesAndHelp() {
        let registry = MetricsRegistry()
        let errors = registry.counter("errors_total", help: "Line one\nback\\slash", labels: ["message"])
        errors.increment("say \"hi\"\n\\")
        #expect(registry.exposition() == """
            # HELP errors_total Line one\\nback\\\\slash
            # TYPE errors_total counter
            errors_total{message="say \\"hi\\"\\n\\\\"} 1

            """)
    }

    @Test func concurrentUpdatesAreAllCounted() async {
        let registry = MetricsRegistry()
        let counter = registry.counter("hits_total", help: "Hits.", labels: ["worker"])
        let histogram = registry.histogram("lat_seconds", help: "Latency.")
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for _ in 0..<1000 {
                        counter.increment(String(worker % 2))
                        histogram.observe(0.001)
                    }
                }
            }
        }
        #expect(counter.value("0") + counter.value("1") == 8000)
        #expect(histogram.count() == 8000)
    }

    @Test func collectedSeriesAreReadAtEachExposition() {
        let registry = MetricsRegistry()
        let source = Mutex<[(labels: [String], value: Double)]>([(["b"], 2), (["a"], 1)])
        registry.collected("tandem_requests_active", help: "Active.", type: .gauge, labels: ["cluster"]) { source.withLock { $0 } }
        registry.collected("tandem_requests_total", help: "Requests.", type: .counter) { [([], 7)] }
        #expect(registry.exposition() == """
            # HELP tandem_requests_active Active.
            # TYPE tandem_requests_active gauge
            tandem_requests_active{cluster="a"} 1
            tandem_requests_active{cluster="b"} 2
            # HELP tandem_requests_total Requests.
            # TYPE tandem_requests_total counter
            tandem_requests_total 7

            """)
        source.withLock { $0 = [(["b"], 5)] }
        #expect(registry.exposition().contains("# TYPE tandem_requests_active gauge\ntandem_requests_active{cluster=\"b\"} 5\n# HELP"),
                "a series no longer read is no longer written")
    }

    @Test func gaugesGoBothWays() {
        let gauge = MetricsRegistry().gauge("open", help: "Open.", labels: ["kind"])
        gauge.add(3, "a")
        gauge.add(-1, "a")
        #expect(gauge.value("a") == 2)
        gauge.set(0.25, "a")
        #expect(gauge.value("a") == 0.25)
    }
}

/// Collects lines in memory.
final class MemorySink: LogSink {
    private let lines = Mutex<[String]>([])
    func write(_ line: [UInt8]) { lines.withLock { $0.append(String(decoding: line, as: UTF8.self)) } }
    var all: [String] { lines.withLock { $0 } }
}

struct LoggerTests {
    static let fixedClock: @Sendable () -> timespec = { timespec(tv_sec: 1_795_829_104, tv_nsec: 123_456_789) }

    @Test func writesOneJSONObjectPerLineWithFieldsInOrder() throws {
        let sink = MemorySink()
        let logger = Logger(sink: sink, clock: Self.fixedClock).with(["component": "webhook"])
        logger.info("admission", ["uid": "u-1", "reason": "injected", "patchOperations": .integer(4), "dryRun": false])
        #expect(sink.all == [
            #"{"time":"2026-11-28T01:25:04.123Z","level":"info","msg":"admission","component":"webhook","uid":"u-1","reason":"injected","patchOperations":4,"dryRun":false}"# + "\n",
        ])
        _ = try JSONReader.parse(sink.all[0])
    }

    @Test func dropsLinesBelowTheLevel() {
        let sink = MemorySink()
        let logger = Logger(level: .warn, sink: sink, clock: Self.fixedClock)
        logger.debug("noise")
        logger.info("noise")
        logger.warn("config rejected", ["error": "injection.enabled: expected a boolean, got a string"])
        logger.error("failed")
        #expect(sink.all.count == 2)
        #expect(sink.all[0].contains(#""level":"warn","msg":"config rejected","error":"injection.enabled: expected a boolean, got a string""#))
    }

    @Test func reservedKeysAreNotOverwritten() {
        let sink = MemorySink()
        Logger(sink: sink, clock: Self.fixedClock).info("m", ["msg": "other", "level": "x"])
        #expect(sink.all == [#"{"time":"2026-11-28T01:25:04.123Z","level":"info","msg":"m"}"# + "\n"])
    }

    @Test func levelsParseByName() {
        #expect(Logger.Level(name: "warn") == .warn)
        #expect(Logger.Level(name: "loud") == nil)
    }

    @Test func standardErrorSinkWritesToFD2() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let saved = dup(2)
        dup2(fds[1], 2)
        StandardErrorSink().write(Array("line\n".utf8))
        dup2(saved, 2)
        close(saved)
        close(fds[1])
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = read(fds[0], &buffer, 16)
        close(fds[0])
        #expect(Array(buffer.prefix(count)) == Array("line\n".utf8))
    }
}
