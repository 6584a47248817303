import Document
import Foundation
import Kube
import Kubernetes
import Net
import Synchronization
import Testing
import TestSupport

private let apiserver = "kube-apiserver-1.28.4/"

private func fixture(_ path: String) throws -> JSON {
    try JSONReader.parse(try SharedFixtures.bytes(apiserver + path))
}

private func fixtureLines(_ path: String) throws -> [JSON] {
    try String(decoding: try SharedFixtures.bytes(apiserver + path), as: UTF8.self)
        .split(separator: "\n").map { try JSONReader.parse(String($0)) }
}

/// The keys of an object, and of the objects inside it, as paths: what "the same shape" means.
private func shape(_ value: JSON, _ prefix: String = "") -> [String] {
    guard let object = value.objectValue else { return [] }
    return object.members.flatMap { key, member in [prefix + key] + shape(member, prefix + key + ".") }
}

/// A chunked body as curl `--raw` writes it: the chunks, and whether the last-chunk ended it.
private func chunks(_ raw: [UInt8]) -> (chunks: [[UInt8]], terminated: Bool) {
    var chunks: [[UInt8]] = []
    var index = 0
    while let lineEnd = raw[index...].firstIndex(of: UInt8(ascii: "\r")), let size = Int(String(decoding: raw[index..<lineEnd], as: UTF8.self), radix: 16) {
        if size == 0 { return (chunks, Array(raw[lineEnd...]) == Array("\r\n\r\n".utf8)) }
        chunks.append(Array(raw[(lineEnd + 2)..<(lineEnd + 2 + size)]))
        index = lineEnd + 2 + size + 2
    }
    return (chunks, false)
}

/// The client against the real server's bytes, and the fake against the real server's shapes.
@Suite(.serialized) struct WireFixtureTests {
    // MARK: Real bytes in

    @Test func realListPagesDecodeWithTheirTypesPutBack() throws {
        let first = try KubeList(try fixture("list/pods-limit2-page1.body.json"))
        #expect(first.resourceVersion == "456")
        #expect(first.continueToken == "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDU2LCJzdGFydCI6ImNoZWNrb3V0LWFcdTAwMDAifQ")
        #expect(first.items.map { $0["metadata"]?["name"]?.stringValue } == ["checkout-7d9f8b6c5d-65c6n", "checkout-a"])
        // Typed like a watch object: kind and apiVersion first, then what the server sent.
        let watched = try fixtureLines("watch/pods-4a/w3-from-rv.stream.jsonl")[0]["object"]!
        #expect(first.items[1].objectValue?.keys == watched.objectValue?.keys)
        #expect(first.items.allSatisfy { $0["kind"] == "Pod" && $0["apiVersion"] == "v1" })
        let last = try KubeList(try fixture("list/pods-limit2-page2.body.json"))
        #expect(last.continueToken == nil)
        #expect(last.items.count == 2)
        let slices = try KubeList(try fixture("list/endpointslices.body.json"))
        #expect(slices.resourceVersion == "490")
        #expect(slices.items.first?["kind"] == "EndpointSlice" && slices.items.first?["apiVersion"] == "discovery.k8s.io/v1")
        #expect(throws: KubeError.self) { try KubeList(try fixture("list/pod-not-found-404.body.json")) }
    }

    @Test func realChunkedWatchDecodesChunkByChunk() throws {
        // The HTTP/1.1 capture, chunk framing and all, parsed as Net parses it and cut into
        // reads of odd sizes, so that chunks and lines both span reads.
        let head = try SharedFixtures.bytes(apiserver + "watch/pods-4a/w2-http11-raw.headers.txt")
        let body = try SharedFixtures.bytes(apiserver + "watch/pods-4a/w2-http11-raw.stream.bin")
        let expected = try fixtureLines("watch/pods-4a/w1-h2.stream.jsonl").map { try #require(WatchEvent($0)) }
        #expect(chunks(body).chunks.count == expected.count)
        #expect(chunks(body).chunks.allSatisfy { $0.last == UInt8(ascii: "\n") && $0.filter { $0 == UInt8(ascii: "\n") }.count == 1 })
        for readSize in [1, 333, 4096, 100_000] {
            var parser = HTTPParser(.response, limits: HTTPLimits(maxBodyBytes: 1 << 20))
            var decoder = WatchStreamDecoder()
            var events: [WatchEvent] = []
            var pending: [UInt8] = []
            var ended = false
            let wire = head + body
            for start in stride(from: 0, to: wire.count, by: readSize) {
                pending += wire[start..<min(start + readSize, wire.count)]
                while true {
                    let (consumed, event) = try parser.parse(pending)
                    if case .body(let range) = event { events += try decoder.feed(Array(pending[range])) }
                    if case .end = event { ended = true }
                    pending.removeFirst(consumed)
                    if event == nil { break }
                }
            }
            try decoder.finish()
            #expect(ended)
            #expect(events == expected, "reads of \(readSize) bytes")
        }
        #expect(expected.prefix(4).allSatisfy { if case .added = $0 { true } else { false } })
    }

    @Test func realStreamsThroughTheClientWhateverTheChunking() async throws {
        // A server replaying real watch bodies in chunks of awkward sizes: several lines in one
        // chunk, one line over many.
        let pki = try TestPKI()
        defer { pki.remove() }
        let folder = try pki.issue(commonName: "kube-apiserver", into: "apiserver")
        let streams = ["watch/pods-4a/w3-from-rv.stream.jsonl", "watch/endpointslices-4b/w2-from-rv.stream.jsonl",
                       "watch/gone-410-4c/c4-watch-pods-rv1.stream.jsonl"]
        let chunkSize = Mutex(1)
        var routes = HTTPRoutes()
        for (index, file) in streams.enumerated() {
            let bytes = try SharedFixtures.bytes(apiserver + file)
            routes.add(.get, "/stream/\(index)") { _ in
                let size = chunkSize.withLock { $0 }
                return HTTPResponse(status: 200, headers: ["Content-Type": "application/json"]) { writer in
                    for start in stride(from: 0, to: bytes.count, by: size) { writer.write(Array(bytes[start..<min(start + size, bytes.count)])) }
                    writer.finish()
                }
            }
        }
        let group = try EventLoopGroup(threads: 1)
        let server = HTTPServer(group: group, configuration: HTTPServerConfiguration(
            tls: try TLSContext(.server(certificateFile: folder + "/tls.crt", keyFile: folder + "/tls.key"))), routes: routes)
        try await server.start()
        let client = try KubeClient(config: KubeConfig(host: "127.0.0.1", port: server.port, certificateAuthority: .file(pki.caCertificate),
                                                       token: "t"), loop: group.next())
        let expected = try streams.map { file in try fixtureLines(file).map { try #require(WatchEvent($0)) } }
        for size in [1, 97, 5000, 1 << 20] {
            chunkSize.withLock { $0 = size }
            for (index, file) in streams.enumerated() {
                var events: [WatchEvent] = []
                for try await event in try await client.watch("/stream/\(index)", resourceVersion: "1", timeoutSeconds: 5) { events.append(event) }
                #expect(events == expected[index], "\(file) in chunks of \(size)")
            }
        }
        await server.shutdown(gracePeriod: .milliseconds(100))
        group.shutdown()
    }

    // MARK: The fake's shapes against the real ones

    /// A fake holding the four pods of the real list pages, in namespace shop.
    private func fakeWithRealPods() async throws -> KubeFixture {
        let fake = try await KubeFixture.start()
        for page in ["list/pods-limit2-page1.body.json", "list/pods-limit2-page2.body.json"] {
            for pod in try KubeList(try fixture(page)).items { fake.server.seed("/api/v1/namespaces/shop/pods", pod) }
        }
        return fake
    }

    @Test func fakeListPagesHaveTheRealShape() async throws {
        let fake = try await fakeWithRealPods()
        let real1 = try fixture("list/pods-limit2-page1.body.json"), real2 = try fixture("list/pods-limit2-page2.body.json")
        let page1 = try await fake.client.get("/api/v1/namespaces/shop/pods?limit=2")
        #expect(page1.objectValue?.keys == real1.objectValue?.keys)
        #expect(page1["metadata"]?.objectValue?.keys == real1["metadata"]?.objectValue?.keys)
        #expect(page1["kind"] == "PodList" && page1["apiVersion"] == "v1" && page1["metadata"]?["remainingItemCount"] == 2)
        // Items without kind and apiVersion, metadata in the server's order.
        #expect(page1["items"]?.arrayValue?.map { $0.objectValue?.keys } == real1["items"]?.arrayValue?.map { $0.objectValue?.keys })
        #expect(page1["items"]?.arrayValue?.map { $0["metadata"]?.objectValue?.keys } == real1["items"]?.arrayValue?.map { $0["metadata"]?.objectValue?.keys })
        // The continue token decodes the same way, naming the last name of the page.
        func decoded(_ list: JSON) throws -> JSON {
            var token = try #require(list["metadata"]?["continue"]?.stringValue).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            token += String(repeating: "=", count: (4 - token.count % 4) % 4)
            return try JSONReader.parse(try #require(Base64.decode(token)))
        }
        #expect(try decoded(page1).objectValue?.keys == (try decoded(real1).objectValue?.keys))
        #expect(try decoded(page1)["start"] == (try decoded(real1)["start"]))
        let token = try #require(page1["metadata"]?["continue"]?.stringValue)
        let page2 = try await fake.client.get("/api/v1/namespaces/shop/pods?limit=2&continue=\(token)")
        #expect(page2.objectValue?.keys == real2.objectValue?.keys)
        #expect(page2["metadata"]?.objectValue?.keys == real2["metadata"]?.objectValue?.keys)
        #expect(page2["items"]?.arrayValue?.map { $0["metadata"]?["name"] } == real2["items"]?.arrayValue?.map { $0["metadata"]?["name"] })
        await fake.stop()
    }

    @Test func fakeErrorsAreTheRealStatusBodies() async throws {
        let fake = try await fakeWithRealPods()
        // Byte for byte, as the real 404.
        do {
            _ = try await fake.client.get("/api/v1/namespaces/shop/pods/does-not-exist")
            Issue.record("found a missing pod")
        } catch {
            #expect(error == KubeError("GET /api/v1/namespaces/shop/pods/does-not-exist: pods \"does-not-exist\" not found", status: 404, reason: "NotFound"))
        }
        let response = try await rawGet(fake, "/api/v1/namespaces/shop/pods/does-not-exist")
        #expect(response.status == 404)
        #expect(response.body == (try SharedFixtures.bytes(apiserver + "list/pod-not-found-404.body.json")))
        // An expired continue token: the same Status, message and fresh token as c3.
        let page1 = try await fake.client.list("/api/v1/namespaces/shop/pods", limit: 2)
        fake.server.seed("/api/v1/namespaces/shop/pods", ["metadata": ["name": "late"]])
        fake.server.compact(upTo: fake.server.resourceVersion)
        let expired = try await rawGet(fake, "/api/v1/namespaces/shop/pods?limit=2&continue=\(page1.continueToken!)")
        let real = try fixture("watch/gone-410-4c/c3-list-pods-continue-rv456-after-compact.body.json")
        let body = try JSONReader.parse(expired.body)
        #expect(expired.status == 410)
        #expect(shape(body) == shape(real))
        #expect(body["message"] == real["message"] && body["reason"] == "Expired" && body["code"] == 410)
        await fake.stop()
    }

    @Test func fakeWatchEventsHaveTheRealShape() async throws {
        let fake = try await fakeWithRealPods()
        let from = fake.server.resourceVersion
        fake.server.seed("/api/v1/namespaces/shop/pods", ["metadata": ["name": "checkout-w1", "labels": ["app": "checkout"]],
                                                          "spec": ["containers": [["name": "app", "image": "nginx"]]]])
        fake.server.seed("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices", try KubeList(try fixture("list/endpointslices.body.json")).items[0])
        fake.server.remove("/api/v1/namespaces/shop/pods/checkout-w1")
        let real = try fixtureLines("watch/pods-4a/w3-from-rv.stream.jsonl")
        for (path, realBookmark) in [("/api/v1/namespaces/shop/pods", real.last!),
                                     ("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices",
                                      try fixtureLines("watch/endpointslices-4b/w2-from-rv.stream.jsonl").last!)] {
            let body = try await rawGet(fake, "\(path)?watch=1&allowWatchBookmarks=true&resourceVersion=\(from)&timeoutSeconds=1")
            #expect(body.status == 200)
            #expect(body.head.headers["content-type"] == "application/json")
            let lines = String(decoding: body.body, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.last == "")
            let events = try lines.dropLast().map { try JSONReader.parse(String($0)) }
            // Each event like the real ones; the stream ends with a bookmark like the real one.
            for event in events.dropLast() {
                let sample = real.first { $0["type"] == event["type"] }!
                #expect(event.objectValue?.keys == ["type", "object"])
                #expect(Array(event["object"]?.objectValue?.keys.prefix(3) ?? []) == Array(sample["object"]?.objectValue?.keys.prefix(3) ?? []))
            }
            var bookmark = try #require(events.last)
            #expect(bookmark["type"] == "BOOKMARK")
            #expect(bookmark["object"]?["metadata"]?["resourceVersion"] == .string(String(fake.server.resourceVersion)))
            bookmark = FakeKubeAPIServer.mergePatch(bookmark, ["object": ["metadata": ["resourceVersion": realBookmark["object"]!["metadata"]!["resourceVersion"]!]]])
            #expect(bookmark == realBookmark)
        }
        // The pod stream: ADDED, DELETED with a newer version than the ADDED.
        let pods = try await fake.client.watch("/api/v1/namespaces/shop/pods", resourceVersion: String(from), timeoutSeconds: 1)
        var versions: [String] = []
        for try await event in pods {
            switch event {
            case .added(let object), .deleted(let object): versions.append(object["metadata"]!["resourceVersion"]!.stringValue!)
            default: break
            }
        }
        #expect(versions == [String(from + 1), String(from + 3)])
        await fake.stop()
    }

    @Test func fakeTooOldWatchIsTheRealErrorEvent() async throws {
        let fake = try await fakeWithRealPods()
        fake.server.compact(upTo: fake.server.resourceVersion)
        let response = try await rawGet(fake, "/api/v1/namespaces/shop/pods?watch=1&resourceVersion=1")
        let real = try fixtureLines("watch/gone-410-4c/c4-watch-pods-rv1.stream.jsonl")
        #expect(response.status == 200)
        let lines = try String(decoding: response.body, as: UTF8.self).split(separator: "\n").map { try JSONReader.parse(String($0)) }
        #expect(lines.count == 1)
        #expect(shape(lines[0]) == shape(real[0]))
        #expect(lines[0]["object"]?["message"] == .string("too old resource version: 1 (\(fake.server.resourceVersion))"))
        #expect(FakeKubeAPIServer.mergePatch(lines[0], ["object": ["message": real[0]["object"]!["message"]!]]) == real[0])
        await fake.stop()
    }

    @Test func fakeWatchIsChunkedLikeTheRealOne() async throws {
        guard hasProgram("curl") else { return }
        let fake = try await fakeWithRealPods()
        // curl --raw keeps the chunk framing, as for w2-http11-raw.
        let run = try runProcess(["curl", "-sS", "--http1.1", "--raw", "-A", "tandem-fixture-capture/1.0", "--cacert", fake.pki.caCertificate,
                                  "-H", "Authorization: Bearer \(fake.server.token)",
                                  "https://127.0.0.1:\(fake.server.port)/api/v1/namespaces/shop/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1"])
        #expect(run.status == 0, "\(run.error)")
        let (fakeChunks, terminated) = chunks(run.output)
        let (realChunks, realTerminated) = chunks(try SharedFixtures.bytes(apiserver + "watch/pods-4a/w2-http11-raw.stream.bin"))
        #expect(terminated && realTerminated)
        #expect(fakeChunks.count == 4)
        // Every chunk one event ending in a newline, on both.
        for chunk in fakeChunks + realChunks {
            #expect(chunk.last == UInt8(ascii: "\n") && chunk.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        }
        // Synthetic ADDED for what exists, as in w1; no bookmark without a resourceVersion.
        let types = try fakeChunks.map { try JSONReader.parse($0)["type"]?.stringValue }
        #expect(types == ["ADDED", "ADDED", "ADDED", "ADDED"])
        await fake.stop()
    }

    @Test func fakeNamespacesLookLikeTheRealOne() async throws {
        let fake = try await KubeFixture.start()
        _ = try await fake.client.create("/api/v1/namespaces", ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "shop"]])
        let created = try await fake.client.get("/api/v1/namespaces/shop")
        var real = try fixture("list/namespace-shop.body.json")
        real = FakeKubeAPIServer.mergePatch(real, ["metadata": ["managedFields": nil]])
        #expect(shape(created) == shape(real))
        #expect(created["metadata"]?["labels"] == real["metadata"]?["labels"])
        #expect(created["spec"] == real["spec"] && created["status"] == real["status"])
        // Namespaced objects list across all namespaces too.
        fake.server.seed("/api/v1/namespaces/shop/services", ["metadata": ["name": "checkout"]])
        fake.server.seed("/api/v1/namespaces/other/services", ["metadata": ["name": "checkout"]])
        let all = try await fake.client.list("/api/v1/services")
        #expect(all.items.map { "\($0["metadata"]!["namespace"]!.stringValue!)/\($0["metadata"]!["name"]!.stringValue!)" } == ["other/checkout", "shop/checkout"])
        await fake.stop()
    }

    /// A GET through a client that keeps the status and body whatever they are.
    private func rawGet(_ fake: KubeFixture, _ target: String) async throws -> HTTPClientResponse {
        let http = HTTPClient(loop: fake.group.next(), configuration: HTTPClientConfiguration(tls: try TLSContext(.client(trustedCAFile: fake.pki.caCertificate))))
        let response = try await http.send(HTTPClientRequest(method: .get, isTLS: true, host: "127.0.0.1", port: fake.server.port, target: target,
                                                            headers: ["Authorization": "Bearer \(fake.server.token)"]))
        await http.closeIdleConnections()
        return response
    }
}
