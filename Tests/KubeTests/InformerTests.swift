import Document
import Kube
import Kubernetes
import Synchronization
import Testing
import TestSupport

/// What an informer delivered, in order.
private final class Recorder: Sendable {
    private let events = Mutex<[Informer.Event]>([])

    var all: [Informer.Event] { events.withLock { $0 } }
    var replacements: [[JSON]] { all.compactMap { if case .replaced(let items) = $0 { items } else { nil } } }

    func record(_ event: Informer.Event) { events.withLock { $0.append(event) } }

    /// Short descriptions: `replaced a,b`, `upserted a`, `deleted b`.
    var summary: [String] {
        all.map { event in
            switch event {
            case .replaced(let items): "replaced " + items.map(name).joined(separator: ",")
            case .upserted(let object): "upserted " + name(object)
            case .deleted(let object): "deleted " + name(object)
            }
        }
    }
}

private func name(_ object: JSON) -> String { object["metadata"]?["name"]?.stringValue ?? "?" }

private let slices = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"

private func slice(_ name: String, address: String = "192.0.2.10") -> JSON {
    ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": ["name": .string(name), "labels": ["kubernetes.io/service-name": "checkout"]],
     "addressType": "IPv4", "endpoints": [["addresses": [.string(address)]]], "ports": [["name": "http", "port": 8080]]]
}

/// An informer running in a task, stopped at the end of the test.
private struct Running {
    let informer: Informer
    let recorder: Recorder
    let task: Task<Void, Never>

    init(_ fixture: KubeFixture, path: String = slices, options: Informer.Options = Informer.Options(pageSize: 3, watchTimeoutSeconds: 30,
                                                                                                  initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(200))) {
        let recorder = Recorder()
        let informer = Informer(client: fixture.client, path: path, options: options) { recorder.record($0) }
        self.informer = informer
        self.recorder = recorder
        task = Task { await informer.run() }
    }

    func stop() async {
        task.cancel()
        await task.value
    }

    /// Names in the cache, sorted.
    var names: [String] { informer.objects.values.map(name).sorted() }
}

@Suite(.serialized) struct InformerTests {
    @Test func syncsInPagesThenFollowsChanges() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        for index in 1...7 { server.seed(slices, slice("s\(index)")) }
        server.seed("/apis/discovery.k8s.io/v1/namespaces/other/endpointslices", slice("elsewhere"))
        let running = Running(fixture)
        #expect(await eventually { running.informer.hasSynced })
        #expect(running.recorder.summary == ["replaced s1,s2,s3,s4,s5,s6,s7"])
        #expect(running.names == ["s1", "s2", "s3", "s4", "s5", "s6", "s7"])
        let lists = server.requestTargets.filter { $0.hasPrefix("GET \(slices)?") && !$0.contains("watch=1") }
        #expect(lists.count == 3)
        #expect(lists.allSatisfy { $0.contains("limit=3") })
        #expect(lists.dropFirst().allSatisfy { $0.contains("continue=") })
        // Then the watch, from the list's version, with bookmarks.
        #expect(await eventually { server.openWatches == 1 })
        let version = try #require(running.informer.resourceVersion)
        #expect(server.requestTargets.last == "GET \(slices)?watch=1&allowWatchBookmarks=true&resourceVersion=\(version)&timeoutSeconds=30")

        server.seed(slices, slice("s8"))
        server.seed(slices, slice("s1", address: "192.0.2.99"))
        server.seed(slices, slice("s1", address: "192.0.2.99"))  // a write that changes nothing but the version
        server.remove(slices + "/s2")
        #expect(await eventually { running.recorder.all.count == 5 })
        #expect(running.recorder.summary.dropFirst() == ["upserted s8", "upserted s1", "upserted s1", "deleted s2"])
        #expect(running.informer.objects["shop/s1"]?["endpoints"]?.arrayValue?.first?["addresses"] == ["192.0.2.99"])
        #expect(running.names == ["s1", "s3", "s4", "s5", "s6", "s7", "s8"])
        #expect(running.informer.resourceVersion == String(server.resourceVersion))
        // Stopping closes the watch.
        await running.stop()
        #expect(await eventually { server.openWatches == 0 })
        #expect(running.informer.counters == Informer.Counters(listRequests: 3, watchRequests: 1, failures: 0, expirations: 0))
        await fixture.stop()
    }

    @Test func bookmarksAndTimeoutsMoveTheVersionWithoutRelisting() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        server.seed(slices, slice("a"))
        let running = Running(fixture, options: Informer.Options(watchTimeoutSeconds: 1))
        #expect(await eventually { server.openWatches == 1 })
        // Writes elsewhere move the global version; a bookmark tells the informer.
        server.seed("/api/v1/namespaces/shop/secrets", ["metadata": ["name": "x"]])
        server.bookmark()
        #expect(await eventually { running.informer.resourceVersion == String(server.resourceVersion) })
        // Each watch ends after its second with a bookmark; the next starts from there.
        server.seed("/api/v1/namespaces/shop/secrets", ["metadata": ["name": "y"]])
        let afterY = server.resourceVersion
        #expect(await eventually(timeout: .seconds(5)) { running.informer.counters.watchRequests >= 3 })
        server.seed(slices, slice("b"))
        #expect(await eventually { running.names == ["a", "b"] })
        #expect(running.informer.counters.listRequests == 1)
        let watched = server.requestTargets.filter { $0.contains("watch=1") }.compactMap { target in
            target.split(separator: "&").first { $0.hasPrefix("resourceVersion=") }.flatMap { Int($0.dropFirst(16)) }
        }
        #expect(watched.contains(afterY))
        #expect(watched == watched.sorted())
        await running.stop()
        await fixture.stop()
    }

    @Test func expiredWatchRelistsAndDropsWhatWasDeletedMeanwhile() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        for name in ["a", "b", "c"] { server.seed(slices, slice(name)) }
        let running = Running(fixture)
        #expect(await eventually { server.openWatches == 1 })
        // The API server goes away; meanwhile b is deleted, d is added, and the history the
        // informer would resume from is compacted away.
        await server.stopServing()
        server.remove(slices + "/b")
        server.seed(slices, slice("d"))
        server.compact(upTo: server.resourceVersion)
        try await server.startServing()
        // The watch from the old version gets the 410 event, and the relist replaces everything.
        #expect(await eventually { running.recorder.replacements.count == 2 })
        #expect(running.recorder.summary.last == "replaced a,c,d")
        #expect(running.names == ["a", "c", "d"])
        #expect(running.informer.counters.expirations == 1)
        #expect(running.informer.counters.listRequests == 2)
        #expect(await eventually { server.openWatches == 1 })
        server.seed(slices, slice("e"))
        #expect(await eventually { running.names == ["a", "c", "d", "e"] })
        await running.stop()
        await fixture.stop()
    }

    @Test func expiredContinueTokenStartsTheListOver() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        for index in 1...5 { server.seed(slices, slice("s\(index)")) }
        // Between the first and the second page, a write and a compaction expire the token.
        server.beforeNext(.get) {
            server.beforeNext(.get) {
                server.seed(slices, slice("s6"))
                server.compact(upTo: server.resourceVersion)
            }
        }
        let running = Running(fixture)
        #expect(await eventually { running.informer.hasSynced })
        // One complete list is delivered, from the second attempt, and it has the new object.
        #expect(running.recorder.summary == ["replaced s1,s2,s3,s4,s5,s6"])
        #expect(running.informer.counters.expirations == 1)
        let lists = server.requestTargets.filter { !$0.contains("watch=1") }
        #expect(lists.count == 4)
        #expect(lists.map { $0.contains("continue=") } == [false, true, false, true])
        await running.stop()
        await fixture.stop()
    }

    @Test func restartedServerIsRejoinedWithoutLosingChanges() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        for name in ["a", "b", "c"] { server.seed(slices, slice(name)) }
        let running = Running(fixture)
        #expect(await eventually { server.openWatches == 1 })
        for round in 1...3 {
            await server.stopServing()
            // Changes while the informer cannot watch.
            server.seed(slices, slice("new\(round)"))
            server.seed(slices, slice("a", address: "192.0.2.\(round)"))
            server.remove(slices + "/" + (round == 1 ? "b" : "new\(round - 1)"))
            #expect(await eventually { running.informer.counters.failures >= round })
            try await server.startServing()
            #expect(await eventually { running.informer.resourceVersion == String(server.resourceVersion) })
            #expect(running.informer.objects.values.sorted { name($0) < name($1) }
                    == (try await fixture.client.list(slices).items.sorted { name($0) < name($1) }))
        }
        #expect(running.names == ["a", "c", "new3"])
        // The watch resumed from where it was: no relist, every change seen one by one.
        #expect(running.informer.counters.listRequests == 1)
        #expect(running.informer.counters.failures >= 3)
        #expect(running.recorder.summary.filter { $0.hasPrefix("deleted") } == ["deleted b", "deleted new1", "deleted new2"])
        await running.stop()
        await fixture.stop()
    }

    @Test func failuresBackOffWithinTheCap() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        server.seed(slices, slice("a"))
        server.failNext(8, status: 503)
        let started = ContinuousClock.now
        let running = Running(fixture, options: Informer.Options(initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(100)))
        #expect(await eventually { running.informer.hasSynced })
        // 20 + 40 + 80 + 100 × 5 ms of waiting: the cap holds it well under what doubling would take (5 s).
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(640))
        #expect(elapsed < .seconds(3))
        #expect(running.informer.counters.failures == 8)
        #expect(!running.recorder.all.isEmpty)
        // A server that is down for a while is retried until it is back.
        await server.stopServing()
        server.seed(slices, slice("b"))
        #expect(await eventually { running.informer.counters.failures > 10 })
        try await server.startServing()
        #expect(await eventually { running.names == ["a", "b"] })
        await running.stop()
        await fixture.stop()
    }

    @Test func severalCollectionsShareOneClient() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        server.seed("/api/v1/namespaces/shop/services", ["metadata": ["name": "checkout"], "spec": ["ports": [["port": 80]]]])
        server.seed("/apis/discovery.k8s.io/v1/namespaces/other/endpointslices", slice("x"))
        server.seed(slices, slice("y"))
        let services = Running(fixture, path: "/api/v1/services")
        let allSlices = Running(fixture, path: "/apis/discovery.k8s.io/v1/endpointslices")
        #expect(await eventually { services.informer.hasSynced && allSlices.informer.hasSynced })
        #expect(await eventually { server.openWatches == 2 })
        #expect(Set(allSlices.informer.objects.keys) == ["other/x", "shop/y"])
        #expect(Set(services.informer.objects.keys) == ["shop/checkout"])
        server.seed("/apis/discovery.k8s.io/v1/namespaces/third/endpointslices", slice("z"))
        server.remove("/api/v1/namespaces/shop/services/checkout")
        #expect(await eventually { allSlices.informer.objects["third/z"] != nil && services.informer.objects.isEmpty })
        #expect(services.recorder.summary == ["replaced checkout", "deleted checkout"])
        await services.stop()
        await allSlices.stop()
        #expect(await eventually { server.openWatches == 0 })
        await fixture.stop()
    }
}
