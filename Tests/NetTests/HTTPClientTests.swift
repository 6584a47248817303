import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Net

@Suite(.serialized) struct HTTPClientTests {
    @Test func reusesPooledConnections() async throws {
        let server = try await TestServer.start()
        let client = HTTPClient(loop: server.group.next())
        for _ in 0..<5 {
            let response = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/hello"))
            #expect(response.status == 200)
            #expect(response.body == Array("hello".utf8))
        }
        let posted = try await client.send(HTTPClientRequest(method: .post, url: "http://127.0.0.1:\(server.port)/echo", body: Array("ping".utf8)))
        #expect(posted.body == Array("ping".utf8))
        let head = try await client.send(HTTPClientRequest(method: .head, url: "http://127.0.0.1:\(server.port)/big"))
        #expect(head.head.headers["content-length"] == "1048576")
        #expect(head.body.isEmpty)
        let big = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/big"))
        #expect(big.body.count == 1 << 20)
        #expect(await client.idleConnectionCount() == 1)
        #expect(await server.server.connectionCounts().reduce(0, +) == 1)
        await client.closeIdleConnections()
        await server.stop()
    }

    @Test func retriesWhenThePooledConnectionWasClosedByTheServer() async throws {
        let server = try await TestServer.start(HTTPServerConfiguration(idleTimeout: .milliseconds(100)))
        let client = HTTPClient(loop: server.group.next())
        let url = "http://127.0.0.1:\(server.port)/hello"
        #expect(try await client.send(HTTPClientRequest(url: url)).status == 200)
        #expect(await eventually { await server.server.connectionCounts().reduce(0, +) == 0 })
        #expect(try await client.send(HTTPClientRequest(url: url)).status == 200)
        await client.closeIdleConnections()
        await server.stop()
    }

    @Test func deliversStreamedChunksAsTheyArrive() async throws {
        let writers = Mutex<[HTTPResponseWriter]>([])
        var routes = standardRoutes()
        routes.add(.get, "/watch") { _ in HTTPResponse { writer in writers.withLock { $0.append(writer) } } }
        let server = try await TestServer.start(routes: routes)
        let client = HTTPClient(loop: server.group.next())
        let response = try await client.stream(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/watch"))
        #expect(response.head.status == 200)
        // The head can reach us before the handler's stream callback has run.
        #expect(await eventually { writers.withLock { !$0.isEmpty } })
        let writer = try #require(writers.withLock { $0.first })
        var iterator = response.body.makeAsyncIterator()
        for event in 1...3 {
            let line = Array("{\"type\":\"ADDED\",\"n\":\(event)}\n".utf8)
            writer.write(line)
            // The next write happens only after this chunk arrived: nothing waits for the end.
            #expect(try await iterator.next() == line)
        }
        writer.finish()
        #expect(try await iterator.next() == nil)
        await server.stop()
    }

    @Test func cancellingAStreamClosesItsConnection() async throws {
        let writers = Mutex<[HTTPResponseWriter]>([])
        var routes = standardRoutes()
        routes.add(.get, "/watch") { _ in HTTPResponse { writer in writers.withLock { $0.append(writer) } } }
        let server = try await TestServer.start(routes: routes)
        let client = HTTPClient(loop: server.group.next())
        let task = Task {
            let response = try await client.stream(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/watch"))
            for try await _ in response.body {}
        }
        #expect(await eventually { writers.withLock { !$0.isEmpty } })
        let writer = writers.withLock { $0[0] }
        task.cancel()
        #expect(await eventually { !writer.isOpen })
        await server.stop()
    }

    @Test func cancellingASendCancelsItsExchange() async throws {
        let writers = Mutex<[HTTPResponseWriter]>([])
        var routes = standardRoutes()
        routes.add(.get, "/watch") { _ in HTTPResponse { writer in writers.withLock { $0.append(writer) } } }
        let server = try await TestServer.start(routes: routes)
        let client = HTTPClient(loop: server.group.next())
        // A body that never ends: only cancellation can end this send.
        let task = Task { try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/watch")) }
        #expect(await eventually { writers.withLock { !$0.isEmpty } })
        task.cancel()
        await #expect { _ = try await task.value } throws: { error in "\(error)".contains("request cancelled") }
        #expect(await eventually { writers.withLock { !$0[0].isOpen } })
        await server.stop()
    }

    @Test func aStreamThatFallsSilentPastItsOwnReadTimeoutFails() async throws {
        let writers = Mutex<[HTTPResponseWriter]>([])
        var routes = standardRoutes()
        routes.add(.get, "/watch") { _ in HTTPResponse { writer in writers.withLock { $0.append(writer) } } }
        let server = try await TestServer.start(routes: routes)
        // The client-wide setting lets bodies idle forever; this one request may not.
        let client = HTTPClient(loop: server.group.next())
        var request = try HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/watch")
        request.bodyReadTimeout = .milliseconds(300)
        let response = try await client.stream(request)
        #expect(await eventually { writers.withLock { !$0.isEmpty } })
        let writer = try #require(writers.withLock { $0.first })
        var iterator = response.body.makeAsyncIterator()
        // Bytes keep it alive past the timeout…
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(150))
            writer.write(Array("{}\n".utf8))
            #expect(try await iterator.next() == Array("{}\n".utf8))
        }
        // …and silence ends it.
        await #expect { _ = try await iterator.next() } throws: { error in "\(error)".contains("body read timed out") }
        #expect(await eventually { !writer.isOpen })
        await server.stop()
    }

    @Test func timeoutsAndRefusalsAreErrorsThatSayWhy() async throws {
        let group = try EventLoopGroup(threads: 1)
        defer { group.shutdown() }
        // A listener that never answers: the kernel completes the handshake, nobody reads.
        let silent = try TCPListener(address: try SocketAddress(ip: "127.0.0.1", port: 0), reusePort: false)
        defer { silent.close() }
        let client = HTTPClient(loop: group.next(), configuration: HTTPClientConfiguration(responseTimeout: .milliseconds(200)))
        await #expect { _ = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(silent.localAddress.port)/")) } throws: { error in
            "\(error)".contains("no response within")
        }
        // A port with nobody listening.
        let closed = try TCPListener(address: try SocketAddress(ip: "127.0.0.1", port: 0), reusePort: false)
        let port = closed.localAddress.port
        closed.close()
        await #expect { _ = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/")) } throws: { error in
            "\(error)".contains("connect(127.0.0.1:\(port))") && "\(error)".contains("Connection refused")
        }
    }

    @Test func encodesAndDecodesQueries() {
        let items = [("labelSelector", "app=web,tier!=db"), ("continue", "eyJ2Ijoi+/="), ("empty", ""), ("ünï", "a b")]
        let encoded = URLQuery.encode(items)
        #expect(encoded == "labelSelector=app%3Dweb%2Ctier%21%3Ddb&continue=eyJ2Ijoi%2B%2F%3D&empty=&%C3%BCn%C3%AF=a%20b")
        #expect(URLQuery.decode(Substring(encoded))?.map { "\($0.0)=\($0.1)" } == items.map { "\($0.0)=\($0.1)" })
        #expect(URLQuery.decode("a=1+2&flag&b=%41")?.map { "\($0.0)=\($0.1)" } == ["a=1 2", "flag=", "b=A"])
        #expect(URLQuery.decode("a=%4") == nil)
        #expect(URLQuery.decode("a=%zz") == nil)
    }

    @Test func parsesURLs() throws {
        let plain = try HTTPClientRequest(url: "http://example.com/a?b=c")
        #expect(plain.host == "example.com" && plain.port == 80 && plain.target == "/a?b=c" && !plain.isTLS)
        let tls = try HTTPClientRequest(url: "https://10.0.0.1:6443")
        #expect(tls.host == "10.0.0.1" && tls.port == 6443 && tls.target == "/" && tls.isTLS)
        let v6 = try HTTPClientRequest(url: "https://[::1]:8443/x")
        #expect(v6.host == "::1" && v6.port == 8443 && v6.hostHeader == "[::1]:8443")
        #expect(throws: HTTPClientError.self) { try HTTPClientRequest(url: "ftp://x") }
        #expect(throws: HTTPClientError.self) { try HTTPClientRequest(url: "http://x:99999/") }
    }
}

@Test func timersFireInDeadlineOrderAndCancel() async throws {
    let group = try EventLoopGroup(threads: 1)
    defer { group.shutdown() }
    let loop = group.next()
    let fired = Mutex<[Int]>([])
    try await loop.submit {
        let now = NanoTime.now()
        loop.schedule(at: now + .milliseconds(30)) { fired.withLock { $0.append(3) } }
        loop.schedule(at: now + .milliseconds(10)) { fired.withLock { $0.append(1) } }
        let cancelled = loop.schedule(at: now + .milliseconds(20)) { fired.withLock { $0.append(2) } }
        loop.cancel(cancelled)
        #expect(loop.inEventLoop)
    }
    #expect(!loop.inEventLoop)
    #expect(await eventually { fired.withLock { $0.count == 2 } })
    #expect(fired.withLock { $0 } == [1, 3])
}

@Suite(.serialized) struct HTTPClientLifetimeTests {
    /// A client freed while its loop runs: the pooled connection the server later closes must not
    /// reach for the freed pool (it used to crash on an unowned reference).
    @Test func freedClientsPooledConnectionClosingLaterIsHarmless() async throws {
        let server = try await TestServer.start(HTTPServerConfiguration(idleTimeout: .milliseconds(100)))
        do {
            let client = HTTPClient(loop: server.group.next())
            #expect(try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/hello")).status == 200)
        }
        #expect(await eventually { await server.server.connectionCounts().reduce(0, +) == 0 })
        let next = HTTPClient(loop: server.group.next())
        #expect(try await next.send(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/hello")).status == 200)
        await next.closeIdleConnections()
        await server.stop()
    }
}
