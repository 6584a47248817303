import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Net

@Suite(.serialized) struct HTTPServerTests {
    @Test func servesCurlRequests() async throws {
        let server = try await TestServer.start()
        let base = "http://127.0.0.1:\(server.port)"
        #expect(try run(["curl", "-sS", "\(base)/hello"]).output == "hello")
        #expect(try run(["curl", "-sS", "\(base)/peer"]).output == "127.0.0.1")
        #expect(try run(["curl", "-sS", "\(base)/files/a/b.txt"]).output == "file a/b.txt")
        #expect(try run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "\(base)/nope"]).output == "404")
        let notAllowed = try run(["curl", "-sS", "-i", "-X", "DELETE", "\(base)/hello"]).output
        #expect(notAllowed.hasPrefix("HTTP/1.1 405"))
        #expect(notAllowed.contains("Allow: GET"))
        #expect(try run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "\(base)/bad-header"]).output == "500")
        // Chunked upload, and Expect: 100-continue as curl does it for big bodies.
        let payload = [UInt8]((0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let chunked = try run(["curl", "-sS", "--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                               "-o", "/dev/null", "-w", "%{size_download}", "\(base)/echo"], stdin: payload)
        #expect(chunked.output == "300000")
        let expecting = try run(["curl", "-sS", "-H", "Expect: 100-continue", "-X", "PUT", "--data-binary", "@-",
                                 "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "\(base)/echo"], stdin: payload)
        #expect(expecting.output == "200 300000")
        // Several requests over one kept-alive connection.
        let keepAlive = try run(["curl", "-sS", "-v", "\(base)/hello", "\(base)/hello", "\(base)/hello"])
        #expect(keepAlive.output == "hellohellohello")
        #expect(keepAlive.error.contains("Re-using existing connection") || keepAlive.error.contains("Reusing existing connection"))
        await server.stop()
    }

    @Test func answersPipelinedRequestsInOrder() async throws {
        let server = try await TestServer.start()
        let client = try RawClient(port: server.port)
        client.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcHEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /peer HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let (bytes, eof) = client.read()
        #expect(eof)
        var parser = HTTPParser(.response)
        var bodies: [String] = []
        var statuses: [Int] = []
        var rest = bytes
        var index = 0
        while true {
            parser.respondingToHEAD = index == 2
            let (consumed, event) = try parser.parse(rest)
            if case .responseHead(let head) = event { statuses.append(head.status); bodies.append("") }
            if case .body(let range) = event { bodies[bodies.count - 1] += text(Array(rest[range])) }
            if case .end = event { index += 1 }
            rest.removeFirst(consumed)
            if event == nil { break }
        }
        #expect(statuses == [200, 200, 200, 200])
        #expect(bodies == ["hello", "abc", "", "127.0.0.1"])
        await server.stop()
    }

    @Test func keepsHTTP10ConnectionsAliveOnlyWhenAsked() async throws {
        let server = try await TestServer.start()
        let client = try RawClient(port: server.port)
        client.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let first = client.responses(1)
        #expect(first.first?.head.headers["connection"] == "keep-alive")
        client.send("GET /hello HTTP/1.0\r\n\r\n")
        let (rest, eof) = client.read()
        #expect(text(rest).contains("Connection: close"))
        #expect(eof)
        await server.stop()
    }

    @Test(arguments: [
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        ("GET /hello HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost: a\r\nX" + String(repeating: "x", count: 40_000) + ": 1\r\n\r\n", 431),
        ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n", 413),
        ("GET /hello HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    ])
    func rejectsBadRequestsAndCloses(raw: String, status: Int) async throws {
        let server = try await TestServer.start()
        let client = try RawClient(port: server.port)
        client.send(raw)
        let (bytes, eof) = client.read()
        let outcome = parseAll(bytes, kind: .response)
        #expect(outcome.messages.first?.response?.status == status)
        #expect(outcome.messages.first?.response?.headers["connection"] == "close")
        #expect(eof)
        await server.stop()
    }

    @Test func closesSlowlorisAndIdleClients() async throws {
        let configuration = HTTPServerConfiguration(headerReadTimeout: .milliseconds(300), idleTimeout: .milliseconds(300))
        let server = try await TestServer.start(configuration)
        // Slowloris: a byte every 50 ms never completes the head; the header deadline does not
        // move with each byte, so the server closes at about 300 ms.
        let slow = try RawClient(port: server.port)
        let started = ContinuousClock.now
        let head = Array(("GET /hello HTTP/1.1\r\nHost: a\r\nX-Padding: " + String(repeating: "p", count: 200)).utf8)
        var closed = false
        for byte in head {
            guard slow.send([byte]) else { closed = true; break }
            var probe = pollfd(fd: slow.fd, events: Int16(POLLIN), revents: 0)
            if poll(&probe, 1, 50) > 0 { closed = slow.read().eof; if closed { break } }
        }
        #expect(closed)
        #expect(ContinuousClock.now - started < .seconds(2))
        // A silent connection is closed by the same deadline; a kept-alive one by the idle timeout.
        let silent = try RawClient(port: server.port)
        #expect(silent.read().eof)
        let idle = try RawClient(port: server.port)
        idle.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(idle.responses(1).first?.body == Array("hello".utf8))
        #expect(idle.read().eof)
        #expect(await eventually { await server.server.connectionCounts().reduce(0, +) == 0 })
        await server.stop()
    }

    @Test func streamsChunksAsTheyAreWritten() async throws {
        let writers = Mutex<[HTTPResponseWriter]>([])
        var routes = standardRoutes()
        routes.add(.get, "/watch") { _ in
            HTTPResponse(status: 200, headers: ["Content-Type": "application/json"]) { writer in
                writers.withLock { $0.append(writer) }
            }
        }
        let server = try await TestServer.start(routes: routes)
        let client = try RawClient(port: server.port)
        client.send("GET /watch HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(await eventually { writers.withLock { !$0.isEmpty } })
        let writer = writers.withLock { $0[0] }
        let closedFlag = Mutex(false)
        writer.onClose { closedFlag.withLock { $0 = true } }
        // Each event written from another thread reaches the client before the next is written.
        var received: [UInt8] = []
        for event in 1...3 {
            Thread.detachNewThread { writer.write(Array("{\"event\":\(event)}\n".utf8)) }
            let expected = "{\"event\":\(event)}\n"
            received += client.read { text($0).contains(expected) }.bytes
            #expect(text(received).contains(expected))
        }
        writer.finish()
        received += client.read { text($0).hasSuffix("0\r\n\r\n") }.bytes
        let outcome = parseAll(received, kind: .response)
        #expect(outcome.messages.first?.response?.headers["transfer-encoding"] == "chunked")
        #expect(text(outcome.messages.first?.body ?? []) == "{\"event\":1}\n{\"event\":2}\n{\"event\":3}\n")
        #expect(closedFlag.withLock { $0 })
        // The connection stays usable after the stream.
        client.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(client.responses(1).first?.body == Array("hello".utf8))
        await server.stop()
    }

    @Test func deferredResponsesAnswerLaterInOrder() async throws {
        let responders = Mutex<[HTTPResponder]>([])
        var routes = standardRoutes()
        routes.add(.get, "/later") { _ in .deferred { responder in responders.withLock { $0.append(responder) } } }
        routes.add(.get, "/at-once") { _ in .deferred { $0.respond(.text(201, "at once")) } }
        let server = try await TestServer.start(routes: routes)
        let client = try RawClient(port: server.port)
        // A pipelined request behind a deferred one waits for it, then both answer in order.
        client.send("GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(await eventually { responders.withLock { !$0.isEmpty } })
        let responder = responders.withLock { $0[0] }
        #expect(responder.isOpen)
        Thread.detachNewThread { responder.respond(HTTPResponse(status: 202, headers: ["X-Answer": "late"], body: Array("later".utf8))) }
        let answers = client.responses(2)
        #expect(answers.map(\.head.status) == [202, 200])
        #expect(answers.first?.head.headers["x-answer"] == "late")
        #expect(answers.map { text($0.body) } == ["later", "hello"])
        // Only the first answer counts.
        #expect(!responder.isOpen)
        responder.respond(.text(500, "again"))
        // An answer given inside the handler's own turn works too.
        client.send("GET /at-once HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(client.responses(1).map { text($0.body) } == ["at once"])
        // A client that resets the connection before the answer closes the responder; the late
        // answer is dropped and the server goes on serving.
        var leaving: RawClient? = try RawClient(port: server.port)
        leaving?.send("GET /later HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(await eventually { responders.withLock { $0.count == 2 } })
        let abandoned = responders.withLock { $0[1] }
        var abort = linger(l_onoff: 1, l_linger: 0)
        if let fd = leaving?.fd { setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size)) }
        leaving = nil
        #expect(await eventually { !abandoned.isOpen })
        abandoned.respond(.text(200, "nobody"))
        #expect(client.get("/hello")?.text == "hello")
        await server.stop()
    }

    @Test func shutdownFinishesInFlightWorkThenCloses() async throws {
        let writers = Mutex<[HTTPResponseWriter]>([])
        var routes = standardRoutes()
        routes.add(.get, "/watch") { _ in HTTPResponse { writer in writers.withLock { $0.append(writer) } } }
        let server = try await TestServer.start(routes: routes)
        let idle = try RawClient(port: server.port)
        idle.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(idle.responses(1).count == 1)
        let streaming = try RawClient(port: server.port)
        streaming.send("GET /watch HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(await eventually { writers.withLock { !$0.isEmpty } })
        let writer = writers.withLock { $0[0] }
        let streamClosed = Mutex(false)
        writer.onClose { streamClosed.withLock { $0 = true } }

        let stopping = Task { await server.server.shutdown(gracePeriod: .seconds(5)) }
        #expect(idle.read().eof)  // idle keep-alive connections close at once
        #expect(await eventually { (try? RawClient(port: server.port)) == nil })  // no longer accepting
        writer.write(Array("last".utf8))
        writer.finish()  // in-flight work completes, then the connection closes
        let (tail, eof) = streaming.read()
        #expect(eof)
        #expect(text(tail).contains("last"))
        #expect(text(tail).contains("Connection: close") || text(tail).hasSuffix("0\r\n\r\n"))
        await stopping.value
        #expect(streamClosed.withLock { $0 })
        server.group.shutdown()
    }

    @Test func gracePeriodEndsStuckStreams() async throws {
        var routes = standardRoutes()
        routes.add(.get, "/forever") { _ in HTTPResponse { _ in } }
        let server = try await TestServer.start(routes: routes)
        let client = try RawClient(port: server.port)
        client.send("GET /forever HTTP/1.1\r\nHost: a\r\n\r\n")
        _ = client.read { text($0).contains("\r\n\r\n") }
        let started = ContinuousClock.now
        await server.server.shutdown(gracePeriod: .milliseconds(200))
        #expect(ContinuousClock.now - started >= .milliseconds(150))
        #expect(client.read().eof)
        server.group.shutdown()
    }

    @Test func backpressureHoldsPipelinedResponsesUntilRead() async throws {
        let server = try await TestServer.start()
        let client = try RawClient(port: server.port)
        // 40 requests for 1 MiB each, sent without reading: the server must stop reading
        // rather than queue 40 MiB, and answer them all once the client drains.
        let request = "GET /big HTTP/1.1\r\nHost: a\r\n\r\n"
        client.send(String(repeating: request, count: 40))
        try await Task.sleep(for: .milliseconds(100))
        let responses = client.responses(40)
        #expect(responses.count == 40)
        #expect(responses.allSatisfy { $0.body.count == 1 << 20 })
        await server.stop()
    }

    @Test func closesClientsThatStopReadingButKeepsDrainedStreams() async throws {
        let writers = Mutex<[HTTPResponseWriter]>([])
        var routes = standardRoutes()
        routes.add(.get, "/flood") { _ in
            HTTPResponse { writer in
                for _ in 0..<256 { writer.write([UInt8](repeating: 0x66, count: 64 * 1024)) }
            }
        }
        routes.add(.get, "/watch") { _ in HTTPResponse { writer in writers.withLock { $0.append(writer) } } }
        let flooding = try await TestServer.start(HTTPServerConfiguration(writeTimeout: .milliseconds(300)), routes: routes)
        // 16 MiB into a client that never reads: the write deadline closes it.
        let stuck = try RawClient(port: flooding.port)
        stuck.send("GET /flood HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(await eventually { await flooding.server.connectionCounts().reduce(0, +) == 0 })
        // A watch whose client keeps up may then stay quiet longer than the write deadline.
        let watcher = try RawClient(port: flooding.port)
        watcher.send("GET /watch HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(await eventually { writers.withLock { !$0.isEmpty } })
        let writer = writers.withLock { $0[0] }
        writer.write([UInt8](repeating: 0x77, count: 2 << 20))
        _ = watcher.read { $0.count >= 2 << 20 }
        try await Task.sleep(for: .milliseconds(600))
        writer.write(Array("still here".utf8))
        #expect(text(watcher.read { text($0).contains("still here") }.bytes).contains("still here"))
        #expect(writer.isOpen)
        await flooding.stop()
    }

    /// Connections are spread evenly over the loops, whichever listener the kernel's hash picked;
    /// closed ones are no longer counted.
    @Test func eachConnectionGoesToTheLoopWithTheFewest() async throws {
        let server = try await TestServer.start()
        var clients: [RawClient] = []
        for _ in 0..<16 {
            let client = try RawClient(port: server.port)
            client.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(client.responses(1).count == 1)
            clients.append(client)
        }
        let counts = await server.server.connectionCounts()
        #expect(counts.reduce(0, +) == 16)
        #expect(counts.max()! - counts.min()! <= 1, "\(counts)")
        let loops = counts.count
        clients = []
        #expect(await eventually { await server.server.connectionCounts() == Array(repeating: 0, count: loops) })
        for _ in 0..<(2 * loops) {
            let client = try RawClient(port: server.port)
            client.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(client.responses(1).count == 1)
            clients.append(client)
        }
        #expect(await server.server.connectionCounts() == Array(repeating: 2, count: loops))
        await server.stop()
    }
}

@Test func routesPreferExactThenLongestPrefix() {
    var routes = HTTPRoutes()
    routes.add(.get, "/a/*") { _ in .text(200, "prefix a") }
    routes.add(.get, "/a/b/*") { _ in .text(200, "prefix ab") }
    routes.add(.get, "/a/b/c") { _ in .text(200, "exact") }
    routes.add(.post, "/a/b/c") { _ in .text(200, "post") }
    func body(_ method: HTTPMethod, _ path: Substring) -> String? {
        if case .handler(let handler) = routes.match(method: method, path: path) {
            if case .bytes(let bytes) = handler(HTTPRequest(head: HTTPRequestHead(method: method, target: String(path)))).body { return text(bytes) }
        }
        return nil
    }
    #expect(body(.get, "/a/b/c") == "exact")
    #expect(body(.head, "/a/b/c") == "exact")
    #expect(body(.post, "/a/b/c") == "post")
    #expect(body(.get, "/a/b/d") == "prefix ab")
    #expect(body(.get, "/a/x") == "prefix a")
    if case .methodNotAllowed(let allowed) = routes.match(method: .delete, path: "/a/b/c") {
        #expect(Set(allowed) == [.get, .post])
    } else { Issue.record("expected 405") }
    if case .notFound = routes.match(method: .get, path: "/z") {} else { Issue.record("expected 404") }
}

/// Paths are compared as bytes: a catch-all `*` matches every path, the empty one included, and a
/// path shorter than a prefix or differing in its last byte does not match it.
@Test func routesCompareWholePathsAndPrefixesAsBytes() {
    var routes = HTTPRoutes()
    routes.add(.get, "*") { _ in .text(200, "any") }
    routes.add(.get, "/inject") { _ in .text(200, "exact") }
    routes.add(.get, "/api/v1/*") { _ in .text(200, "api") }
    func body(_ path: Substring) -> String? {
        guard case .handler(let handler) = routes.match(method: .get, path: path),
              case .bytes(let bytes) = handler(HTTPRequest(head: HTTPRequestHead(method: .get, target: "/"))).body else { return nil }
        return text(bytes)
    }
    #expect(body("/inject") == "exact")
    #expect(body("/injecT") == "any")
    #expect(body("/injec") == "any")
    #expect(body("/inject/") == "any")
    #expect(body("/api/v1/") == "api")
    #expect(body("/api/v1") == "any")
    #expect(body("") == "any")
    #expect(body("/inject?x=1".prefix(7)) == "exact")
}

/// A body still arriving after its head is read into its own buffer in place: whatever the
/// reads' boundaries (inside the head, at its end, anywhere in the body), the handler gets the
/// bytes as sent, on one kept-alive connection.
@Test func bodiesSplitAcrossReadsAtEveryBoundaryArriveWhole() async throws {
    let server = try await TestServer.start()
    let client = try RawClient(port: server.port)
    // Splits in the head and in the first and last bytes of a body read in place (16 KiB or more
    // still to come), and every split of a short body, which is appended.
    let head = bytes("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 20000\r\n\r\n")
    for split in Array(1...head.count + 40) + Array(head.count + 20_000 - 40..<head.count + 20_000) {
        // A body of its own for each request: a new one must not pass for being right by
        // landing where the last one was.
        let long = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8 &+ split) }
        let longRequest = head + long
        client.send(Array(longRequest[..<split]))
        try await Task.sleep(for: .milliseconds(5))
        client.send(Array(longRequest[split...]))
        let response = client.responses(1).first
        #expect(response?.head.status == 200, "split at \(split)")
        #expect(response.map { $0.body == long } == true, "split at \(split)")
    }
    let body = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
    let request = bytes("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n") + body
    for split in 1..<request.count {
        client.send(Array(request[..<split]))
        try await Task.sleep(for: .milliseconds(5))
        client.send(Array(request[split...]))
        let response = client.responses(1).first
        #expect(response?.head.status == 200, "split at \(split)")
        #expect(response?.body == body, "split at \(split)")
    }
    // A byte per read.
    for byte in request {
        client.send([byte])
        try await Task.sleep(for: .milliseconds(1))
    }
    #expect(client.responses(1).first?.body == body)
    await server.stop()
}

/// Bytes after a body read in place (the next pipelined requests) are parsed as requests, and
/// each body, whole or split, goes to its own request.
@Test func pipelinedRequestsFollowABodyReadInPlace() async throws {
    let server = try await TestServer.start()
    let client = try RawClient(port: server.port)
    func post(_ body: String) -> String { "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" }
    let bodies = [String(repeating: "first body, split. ", count: 1500), "second", String(repeating: "third, split too. ", count: 1000)]
    let requests = bodies.map(post)
    let all = bytes(requests.joined())
    // Inside the first body (read in place from there), and near the end of the third.
    let cuts = [requests[0].utf8.count - 20_000, all.count - 7]
    client.send(Array(all[..<cuts[0]]))
    try await Task.sleep(for: .milliseconds(20))
    client.send(Array(all[cuts[0]..<cuts[1]]))
    try await Task.sleep(for: .milliseconds(20))
    client.send(Array(all[cuts[1]...]))
    #expect(client.responses(3).map(\.text) == bodies)
    await server.stop()
}

/// A client that sends less than its Content-Length and stops gets no answer: the connection
/// closes when it does.
@Test func bodiesShorterThanTheirLengthAreNeverAnswered() async throws {
    let server = try await TestServer.start()
    let client = try RawClient(port: server.port)
    client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly a part")
    try await Task.sleep(for: .milliseconds(20))
    client.send("and a little more")
    client.shutdownWrite()
    let (received, eof) = client.read()
    #expect(received.isEmpty)
    #expect(eof)
    await server.stop()
}

/// Bodies up to 1 MiB are read in place, larger ones appended as they come; up to the size
/// limit both arrive whole, over many reads.
@Test(arguments: [1 << 20, (1 << 20) + 1, 3 << 19])
func largeBodiesArriveWholeOnEitherSideOfTheInPlaceLimit(length: Int) async throws {
    let server = try await TestServer.start()
    let client = try RawClient(port: server.port)
    let body = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
    client.send(bytes("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(length)\r\n\r\n") + body.prefix(1000))
    try await Task.sleep(for: .milliseconds(10))
    client.send(Array(body.dropFirst(1000)))
    let response = client.responses(1).first
    #expect(response?.body.count == length)
    #expect(response.map { $0.body == body } == true)
    await server.stop()
}
