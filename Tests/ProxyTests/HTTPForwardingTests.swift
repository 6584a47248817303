import Testing
import TestSupport
import Glibc
import Net
@testable import Proxy

@Suite(.serialized) struct HTTPForwardingTests {
    @Test func forwardsWithKeepAliveHeadersAndForwardedFor() async throws {
        let backend = try await Backend.start(name: "a")
        let proxy = try ProxyServer(config: httpConfig([backend.address]))
        try proxy.start()
        defer { proxy.stop() }
        let client = try RawClient(port: proxy.port(of: "in")!)
        for index in 0..<3 {
            let response = try #require(client.get("/item/\(index)?q=1", headers: "Connection: keep-alive, X-Drop\r\nX-Drop: secret\r\nX-Forwarded-For: 10.1.1.1\r\nx-forwarded-for: 10.2.2.2\r\n"))
            #expect(response.head.status == 200)
            #expect(response.text.contains("path=/item/\(index)?q=1"))
            #expect(response.text.contains("x-forwarded-for=10.1.1.1, 10.2.2.2, 127.0.0.1"))
            #expect(!response.text.contains("x-drop"), "headers named by Connection are hop-by-hop")
            #expect(!response.text.contains("connection="))
        }
        client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        #expect(client.responses(1).first?.text == "hello world")
        client.send("HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = client.responses(1, head: true).first
        #expect(head?.head.status == 200 && head?.body.isEmpty == true)
        #expect(await eventually { proxy.statistics()[.downstreamRequests] == 5 })
        #expect(proxy.statistics()[.upstreamConnections] == 1, "one upstream connection, kept alive")
        await backend.stop()
    }

    /// A client's FIN that lands in the same batch of events as, and after, the backend's answer
    /// to it: the answer is queued, then the FIN is read with no request in flight. The answer
    /// must still go out before the close. Rounds of 200 held requests are released while their
    /// clients half-close, so some do land that way.
    @Test func answersQueuedWhenTheClientsFINArrivesStillGoOut() async throws {
        let backend = try await Backend.start(name: "a")
        let proxy = try ProxyServer(config: httpConfig([backend.address]) { $0.limits.maxRequests = 1_000 })
        try proxy.start()
        defer { proxy.stop() }
        let port = proxy.port(of: "in")!
        for round in 0..<5 {
            let clients = try (0..<200).map { _ in try RawClient(port: port) }
            for client in clients { client.send("GET /held HTTP/1.1\r\nHost: t\r\n\r\n") }
            #expect(await eventually { backend.held.count == clients.count })
            backend.release()
            for client in clients { client.shutdownWrite() }
            var answered = 0
            for client in clients {
                let (reply, eof) = client.read()
                if eof && String(decoding: reply, as: UTF8.self).contains("backend=a held") { answered += 1 }
            }
            #expect(answered == clients.count, "round \(round)")
        }
        await backend.stop()
    }

    /// A connection is read as soon as it is accepted and watched only when it has to wait:
    /// a head that arrives in pieces, a second request after a first answered straight away,
    /// and a request sent with its FIN all get their answers.
    @Test func requestsArrivingInPiecesOrWithTheirFIN() async throws {
        let backend = try await Backend.start(name: "a")
        let proxy = try ProxyServer(config: httpConfig([backend.address]))
        try proxy.start()
        defer { proxy.stop() }
        let port = proxy.port(of: "in")!
        let slow = try RawClient(port: port)
        slow.send("GET /first HT")
        try await Task.sleep(for: .milliseconds(50))
        slow.send("TP/1.1\r\nHost: t\r\n\r\n")
        #expect(slow.responses(1).first?.text.contains("path=/first") == true)
        try await Task.sleep(for: .milliseconds(20))
        #expect(slow.get("/second")?.text.contains("path=/second") == true)
        let halfClosed = try RawClient(port: port)
        halfClosed.send("GET /last HTTP/1.1\r\nHost: t\r\n\r\n")
        halfClosed.shutdownWrite()
        let (reply, eof) = halfClosed.read()
        #expect(String(decoding: reply, as: UTF8.self).contains("path=/last") && eof, "\(String(decoding: reply, as: UTF8.self).debugDescription) eof \(eof)")
        #expect(await eventually { proxy.activeConnections == 1 })
        await backend.stop()
    }

    @Test func acceptedSocketsInheritNoDelay() throws {
        let listener = try Socket.listen(HostPort(host: "127.0.0.1", port: 0), reusePort: false)
        defer { close(listener) }
        let client = try RawClient(port: Socket.localPort(listener))
        var accepted: (Int32, String)?
        for _ in 0..<100 where accepted == nil {
            accepted = try Socket.accept(listener)
            if accepted == nil { usleep(10_000) }
        }
        let fd = try #require(accepted).0
        defer { close(fd) }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length)
        #expect(value == 1)
        _ = client
    }

    @Test func streamsLargeAndChunkedBodiesWithCurl() async throws {
        let backend = try await Backend.start(name: "a")
        let proxy = try ProxyServer(config: httpConfig([backend.address]))
        try proxy.start()
        defer { proxy.stop() }
        let base = "http://127.0.0.1:\(proxy.port(of: "in")!)"
        let big = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", base + "/big"])
        #expect(big.output == "200 4194304")
        let stream = try run(["curl", "-s", base + "/stream"])
        #expect(stream.output.hasPrefix("part0;part1;") && stream.output.hasSuffix("part49;"))
        let upload = try run(["sh", "-c", "head -c 3000000 /dev/zero | curl -s -X POST --data-binary @- -o /dev/null -w '%{http_code} %{size_download}' " + base + "/up"])
        #expect(upload.output == "200 3000000")
        let two = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{num_connects}", base + "/a", "-o", "/dev/null", base + "/b"])
        #expect(two.output == "10", "curl reuses the client connection: \(two.output)")
        await backend.stop()
    }

    @Test func pipelinedRequestsAnswerInOrder() async throws {
        let backend = try await Backend.start(name: "a")
        let proxy = try ProxyServer(config: httpConfig([backend.address]))
        try proxy.start()
        defer { proxy.stop() }
        let client = try RawClient(port: proxy.port(of: "in")!)
        client.send((0..<10).map { "GET /p\($0) HTTP/1.1\r\nHost: t\r\n\r\n" }.joined())
        let responses = client.responses(10)
        #expect(responses.count == 10)
        for (index, response) in responses.enumerated() { #expect(response.text.contains("path=/p\(index)\n")) }
        await backend.stop()
    }

    @Test func smugglingProbesAreRefused() async throws {
        let backend = try await Backend.start(name: "a")
        let proxy = try ProxyServer(config: httpConfig([backend.address]))
        try proxy.start()
        defer { proxy.stop() }
        let probes = [
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        ]
        for probe in probes {
            let client = try RawClient(port: proxy.port(of: "in")!)
            client.send(probe)
            let reply = String(decoding: client.readAll(), as: UTF8.self)
            #expect(reply.hasPrefix("HTTP/1.1 4") || reply.hasPrefix("HTTP/1.1 501"), "\(reply)")
            #expect(!reply.contains("smuggled"))
        }
        #expect(await eventually { proxy.statistics()[.downstreamRequestsInvalid] == probes.count })
        await backend.stop()
    }

    @Test func roundRobinAndFailoverToLiveEndpoints() async throws {
        let a = try await Backend.start(name: "a"), b = try await Backend.start(name: "b")
        let refusing = RefusingPort()
        defer { refusing.close() }
        let dead = HostPort(host: "127.0.0.1", port: refusing.port)
        let proxy = try ProxyServer(config: httpConfig([a.address, dead, b.address]) { $0.outlier.consecutiveConnectFailures = 1 })
        try proxy.start()
        defer { proxy.stop() }
        let client = try RawClient(port: proxy.port(of: "in")!)
        var seen: [String: Int] = [:]
        for _ in 0..<30 {
            let response = try #require(client.get("/"))
            #expect(response.head.status == 200, "a failed connect is retried on another endpoint")
            seen[String(response.text.split(separator: "\n")[0]), default: 0] += 1
        }
        #expect(seen["backend=a", default: 0] >= 10 && seen["backend=b", default: 0] >= 10, "\(seen)")
        let snapshot = proxy.clusterSnapshots()[0]
        #expect(snapshot.members[1].ejections == 1, "the dead endpoint was ejected")
        #expect(await eventually { proxy.statistics()[.upstreamRetries]! >= 1 })
        await a.stop()
        await b.stop()
    }

    @Test func noEndpointsAnd404AndKilledBackend() async throws {
        let refusing = RefusingPort()
        defer { refusing.close() }
        var config = httpConfig([HostPort(host: "127.0.0.1", port: refusing.port)]) { $0.retries.attempts = 0 }
        config.listeners[0].routes.insert(.init(pathPrefix: "/none", clusters: [.init("empty")]), at: 0)
        config.listeners[0].routes[1].pathPrefix = "/app"
        config.clusters.append(.init(name: "empty", endpoints: []))
        let proxy = try ProxyServer(config: config)
        try proxy.start()
        defer { proxy.stop() }
        let client = try RawClient(port: proxy.port(of: "in")!)
        #expect(client.get("/none")?.head.status == 503)
        #expect(client.get("/other")?.head.status == 404)
        #expect(client.get("/app")?.head.status == 503)
    }

    @Test func weightedClustersSplitTraffic() async throws {
        let blue = try await Backend.start(name: "blue"), green = try await Backend.start(name: "green")
        var config = httpConfig([blue.address])
        config.clusters.append(.init(name: "green", endpoints: [.init(green.address)]))
        config.listeners[0].routes = [.init(clusters: [.init("app", weight: 90), .init("green", weight: 10)])]
        let proxy = try ProxyServer(config: config)
        try proxy.start()
        defer { proxy.stop() }
        let client = try RawClient(port: proxy.port(of: "in")!)
        var greens = 0
        for _ in 0..<1_000 where client.get("/")?.text.hasPrefix("backend=green") == true { greens += 1 }
        #expect((60...140).contains(greens), "\(greens) of 1000 went to the 10% cluster")
        try proxy.setEndpoints([], cluster: "green")
        // Scaled to zero: the tenth of requests that still pick green find no endpoint (503).
        var statuses: [Int: Int] = [:]
        for _ in 0..<300 { if let status = client.get("/")?.head.status { statuses[status, default: 0] += 1 } }
        #expect(statuses[503, default: 0] > 0 && statuses[200, default: 0] > 0, "\(statuses)")
        await blue.stop()
        await green.stop()
    }

    @Test func http10ClientsGetCloseDelimitedAnswers() async throws {
        let backend = try await Backend.start(name: "a")
        let proxy = try ProxyServer(config: httpConfig([backend.address]))
        try proxy.start()
        defer { proxy.stop() }
        let client = try RawClient(port: proxy.port(of: "in")!)
        client.send("GET /stream HTTP/1.0\r\n\r\n")
        let reply = String(decoding: client.readAll(), as: UTF8.self)
        #expect(reply.hasPrefix("HTTP/1.1 200"))
        #expect(reply.lowercased().contains("connection: close") && !reply.lowercased().contains("transfer-encoding"))
        #expect(reply.hasSuffix("part49;"), "the body ends where the connection does")
        await backend.stop()
    }

    @Test func requestTimeoutAnswers504() async throws {
        // A backend that accepts and never answers.
        let silent = try Socket.listen(HostPort(host: "127.0.0.1", port: 0), reusePort: false)
        defer { close(silent) }
        var config = httpConfig([HostPort(host: "127.0.0.1", port: Socket.localPort(silent))])
        config.listeners[0].routes[0].timeoutMilliseconds = 300
        let proxy = try ProxyServer(config: config)
        try proxy.start()
        defer { proxy.stop() }
        let client = try RawClient(port: proxy.port(of: "in")!)
        let started = ContinuousClock.now
        #expect(client.get("/")?.head.status == 504)
        #expect(ContinuousClock.now - started < .seconds(2))
    }
}

/// What goes on to the next hop, field by field (no sockets: the same function serves requests and responses).
@Test func forwardedFieldsDropHopByHopAndWhatConnectionNames() throws {
    var parser = HTTPParser(.response)
    let raw = "HTTP/1.1 200 OK\r\nServer: s\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nx-secret: 1\r\n"
        + "TE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\nProxy-Connection: close\r\nTransfer-Encoding: chunked\r\n"
        + "X-Forwarded-For: 1.2.3.4\r\nContent-Type: text/plain\r\n\r\n"
    guard case .responseHead(let head)? = try parser.parse(Array(raw.utf8)).event else {
        Issue.record("no head")
        return
    }
    var response: [UInt8] = []
    writeForwardedFields(head.headers, request: false, into: &response)
    #expect(String(decoding: response, as: UTF8.self) == "Server: s\r\nX-Forwarded-For: 1.2.3.4\r\nContent-Type: text/plain\r\n")
    var request: [UInt8] = []
    writeForwardedFields(head.headers, request: true, into: &request)
    #expect(String(decoding: request, as: UTF8.self) == "Server: s\r\nContent-Type: text/plain\r\n", "a request's X-Forwarded-For is rewritten by the caller")

    // Connection naming only hop-by-hop fields (the common case) drops nothing else; any other
    // option, close included, takes a field of its name with it.
    for (connection, kept) in [("keep-alive", "Close: x\r\nX-A: 1\r\n"), ("Close, keep-alive", "X-A: 1\r\n")] {
        var plain = HTTPParser(.response)
        guard case .responseHead(let other)? = try plain.parse(Array("HTTP/1.1 200 OK\r\nConnection: \(connection)\r\nClose: x\r\nX-A: 1\r\n\r\n".utf8)).event else {
            Issue.record("no head")
            return
        }
        var forwarded: [UInt8] = []
        writeForwardedFields(other.headers, request: false, into: &forwarded)
        #expect(String(decoding: forwarded, as: UTF8.self) == kept, "Connection: \(connection)")
    }
}

