import Glibc
import Synchronization

/// A request to send: where to, and what.
public struct HTTPClientRequest: Sendable {
    public var method: HTTPMethod
    public var isTLS: Bool
    public var host: String
    public var port: Int
    /// Origin-form target: `/path?query`.
    public var target: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Longest silence while this response's body is read, instead of the client's
    /// `bodyReadTimeout`: a watch may idle until its own `timeoutSeconds`, and no longer.
    public var bodyReadTimeout: Duration?

    public init(method: HTTPMethod = .get, isTLS: Bool = false, host: String, port: Int, target: String = "/",
                headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], bodyReadTimeout: Duration? = nil) {
        self.method = method
        self.isTLS = isTLS
        self.host = host
        self.port = port
        self.target = target
        self.headers = headers
        self.body = body
        self.bodyReadTimeout = bodyReadTimeout
    }

    /// Parses `http[s]://host[:port][/path][?query]` (IPv6 hosts in brackets).
    public init(method: HTTPMethod = .get, url: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) throws(HTTPClientError) {
        let isTLS: Bool
        var rest: Substring
        if url.hasPrefix("https://") { isTLS = true; rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { isTLS = false; rest = url.dropFirst(7) }
        else { throw HTTPClientError("unsupported URL \(url.debugDescription): want http:// or https://") }
        let slash = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<slash]
        rest = rest[slash...]
        var host = Substring(authority)
        var port = isTLS ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw HTTPClientError("bad IPv6 host in \(url)") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { guard let value = Int(after.dropFirst()) else { throw HTTPClientError("bad port in \(url)") }; port = value }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]) else { throw HTTPClientError("bad port in \(url)") }
            port = value
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw HTTPClientError("bad host or port in \(url)") }
        let target = rest.isEmpty ? "/" : rest.hasPrefix("?") ? "/" + rest : String(rest)
        self.init(method: method, isTLS: isTLS, host: String(host), port: port, target: target, headers: headers, body: body)
    }

    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }
}

public struct HTTPClientResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: [UInt8]
    public var trailers: HTTPHeaders
    public var status: Int { head.status }
}

/// A response whose body arrives as it is sent (a Kubernetes watch never ends).
public struct HTTPStreamingResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: AsyncThrowingStream<[UInt8], Error>
}

public struct HTTPClientError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public struct HTTPClientConfiguration: Sendable {
    /// Used for `https` requests; nil means the system CA store.
    public var tls: TLSContext?
    public var connectTimeout: Duration
    /// From sending the request until the response head arrives.
    public var responseTimeout: Duration
    /// Longest silence while a body is read; nil for streams that may idle (watches).
    public var bodyReadTimeout: Duration?
    public var maxIdleConnectionsPerOrigin: Int
    public var idleTimeout: Duration
    public var limits: HTTPLimits

    public init(tls: TLSContext? = nil, connectTimeout: Duration = .seconds(10), responseTimeout: Duration = .seconds(30),
                bodyReadTimeout: Duration? = nil, maxIdleConnectionsPerOrigin: Int = 8, idleTimeout: Duration = .seconds(60),
                limits: HTTPLimits = HTTPLimits(maxBodyBytes: 1 << 30)) {
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.responseTimeout = responseTimeout
        self.bodyReadTimeout = bodyReadTimeout
        self.maxIdleConnectionsPerOrigin = maxIdleConnectionsPerOrigin
        self.idleTimeout = idleTimeout
        self.limits = limits
    }
}

/// Callbacks for one exchange, all on the client's loop thread, in order: `head` once (final
/// response only), `body` per arriving piece, then `complete` once (with the trailers, or why
/// the exchange failed).
public struct HTTPResponseHandler: Sendable {
    public var head: @Sendable (HTTPResponseHead) -> Void
    public var body: @Sendable ([UInt8]) -> Void
    public var complete: @Sendable (Result<HTTPHeaders, Error>) -> Void

    public init(head: @escaping @Sendable (HTTPResponseHead) -> Void, body: @escaping @Sendable ([UInt8]) -> Void,
                complete: @escaping @Sendable (Result<HTTPHeaders, Error>) -> Void) {
        self.head = head
        self.body = body
        self.complete = complete
    }
}

/// Cancels an exchange: its connection is closed and `complete` reports the cancellation.
public struct HTTPRequestCancellation: Sendable {
    let loop: EventLoop
    let exchange: UnsafeTransfer<ClientExchange>
    public func cancel() {
        let exchange = self.exchange
        loop.execute { exchange.value.cancel() }
    }
}

/// Connects task cancellation to an exchange that may not have started yet when it comes.
private final class CancellableExchange: Sendable {
    private let state = Mutex<(cancellation: HTTPRequestCancellation?, cancelled: Bool)>((nil, false))

    func started(_ cancellation: HTTPRequestCancellation) {
        let cancelNow = state.withLock { state -> Bool in
            state.cancellation = cancellation
            return state.cancelled
        }
        if cancelNow { cancellation.cancel() }
    }

    func cancel() {
        state.withLock { state -> HTTPRequestCancellation? in
            state.cancelled = true
            return state.cancellation
        }?.cancel()
    }
}

/// An HTTP/1.1 client with a keep-alive pool per origin, on one event loop.
public final class HTTPClient: Sendable {
    public let loop: EventLoop
    public let configuration: HTTPClientConfiguration
    private let pool: UnsafeTransfer<ClientPool>
    private let systemTLS = Mutex<TLSContext?>(nil)

    public init(loop: EventLoop, configuration: HTTPClientConfiguration = HTTPClientConfiguration()) {
        self.loop = loop
        self.configuration = configuration
        pool = UnsafeTransfer(ClientPool(configuration: configuration))
    }

    /// Starts an exchange; see `HTTPResponseHandler` for what is reported when.
    @discardableResult
    public func execute(_ request: HTTPClientRequest, handler: HTTPResponseHandler) -> HTTPRequestCancellation {
        let pool = self.pool, loop = self.loop
        do {
            let tls = request.isTLS ? try tlsContext() : nil
            let exchange = UnsafeTransfer(ClientExchange(request: request, handler: handler, tls: tls))
            loop.execute { pool.value.start(exchange.value, on: loop) }
            return HTTPRequestCancellation(loop: loop, exchange: exchange)
        } catch {
            // Failed through the exchange, so that a later cancel finds it finished.
            let exchange = UnsafeTransfer(ClientExchange(request: request, handler: handler, tls: nil))
            loop.execute { exchange.value.fail(error) }
            return HTTPRequestCancellation(loop: loop, exchange: exchange)
        }
    }

    /// Sends a request and collects the whole response. Cancelling the task cancels the exchange.
    public func send(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let collected = Mutex<(head: HTTPResponseHead?, body: [UInt8])>((nil, []))
        let exchange = CancellableExchange()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                exchange.started(execute(request, handler: HTTPResponseHandler(
                    head: { head in collected.withLock { $0.head = head } },
                    body: { bytes in collected.withLock { $0.body += bytes } },
                    complete: { result in
                        switch result {
                        case .success(let trailers):
                            let (head, body) = collected.withLock { ($0.head!, $0.body) }
                            continuation.resume(returning: HTTPClientResponse(head: head, body: body, trailers: trailers))
                        case .failure(let error):
                            continuation.resume(throwing: error)
                        }
                    })))
            }
        } onCancel: {
            exchange.cancel()
        }
    }

    /// Sends a request and returns once the head has arrived; the body follows piece by piece.
    /// Ending the iteration early, or cancelling the task, closes the connection.
    public func stream(_ request: HTTPClientRequest) async throws -> HTTPStreamingResponse {
        let (body, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        let headWaiter = Mutex<CheckedContinuation<HTTPResponseHead, Error>?>(nil)
        let exchange = CancellableExchange()
        let head = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<HTTPResponseHead, Error>) in
                headWaiter.withLock { $0 = waiter }
                let cancellation = execute(request, handler: HTTPResponseHandler(
                    head: { head in headWaiter.withLock { $0.take() }?.resume(returning: head) },
                    body: { bytes in continuation.yield(bytes) },
                    complete: { result in
                        if case .failure(let error) = result {
                            headWaiter.withLock { $0.take() }?.resume(throwing: error)
                            continuation.finish(throwing: error)
                        } else {
                            continuation.finish()
                        }
                    }))
                continuation.onTermination = { termination in
                    if case .cancelled = termination { cancellation.cancel() }
                }
                exchange.started(cancellation)
            }
        } onCancel: {
            exchange.cancel()
        }
        return HTTPStreamingResponse(head: head, body: body)
    }

    /// Closes idle pooled connections (in-flight exchanges continue).
    public func closeIdleConnections() async {
        await withCheckedContinuation { continuation in closeIdleConnections { continuation.resume() } }
    }

    /// The same, for owners that cannot await (a synchronous stop that shuts the loop down
    /// next): `done` runs on the loop once they are closed.
    public func closeIdleConnections(then done: @escaping @Sendable () -> Void) {
        let pool = self.pool
        loop.execute {
            pool.value.closeIdle()
            done()
        }
    }

    /// Pooled idle connections, per origin (for tests and metrics).
    public func idleConnectionCount() async -> Int {
        let pool = self.pool
        return (try? await loop.submit { pool.value.idleCount }) ?? 0
    }

    private func tlsContext() throws(TLSError) -> TLSContext {
        if let tls = configuration.tls { return tls }
        return try systemTLS.withLock { (context: inout TLSContext?) throws(TLSError) -> TLSContext in
            if let context { return context }
            let created = try TLSContext(.client())
            context = created
            return created
        }
    }
}

/// Idle connections per origin (loop-confined).
final class ClientPool {
    struct Origin: Hashable { let isTLS: Bool; let host: String; let port: Int }
    let configuration: HTTPClientConfiguration
    private var idle: [Origin: [ClientConnection]] = [:]

    init(configuration: HTTPClientConfiguration) { self.configuration = configuration }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }

    func start(_ exchange: ClientExchange, on loop: EventLoop) {
        guard !exchange.finished else { return }
        let request = exchange.request
        let origin = Origin(isTLS: request.isTLS, host: request.host, port: request.port)
        while var connections = idle[origin], let connection = connections.popLast() {
            idle[origin] = connections
            if connection.isUsable {
                connection.run(exchange, reused: true)
                return
            }
        }
        if let literal = try? SocketAddress(ip: request.host, port: request.port) {
            return connect(exchange, to: [literal], origin: origin, on: loop)
        }
        let transfer = UnsafeTransfer((self, exchange))
        loop.resolve(host: request.host, port: request.port) { result in
            let (pool, exchange) = transfer.value
            switch result {
            case .success(let addresses): pool.connect(exchange, to: addresses, origin: origin, on: loop)
            case .failure(let error): exchange.fail(error)
            }
        }
    }

    private func connect(_ exchange: ClientExchange, to addresses: [SocketAddress], origin: Origin, on loop: EventLoop) {
        guard !exchange.finished else { return }
        do {
            guard let address = addresses.first else { throw HTTPClientError("no address for \(origin.host)") }
            let connection = ClientConnection(pool: self, origin: origin, loop: loop)
            try connection.connect(to: address, tls: exchange.tls, serverName: origin.host)
            connection.run(exchange, reused: false)
        } catch {
            exchange.fail(error)
        }
    }

    func release(_ connection: ClientConnection) {
        var connections = idle[connection.origin] ?? []
        guard connections.count < configuration.maxIdleConnectionsPerOrigin else { return connection.close() }
        connections.append(connection)
        idle[connection.origin] = connections
    }

    func remove(_ connection: ClientConnection) {
        idle[connection.origin]?.removeAll { $0 === connection }
    }

    func closeIdle() {
        let all = idle.values.flatMap { $0 }
        idle = [:]
        for connection in all { connection.close() }
    }
}

/// One request and its callbacks (loop-confined after creation).
final class ClientExchange {
    let request: HTTPClientRequest
    let handler: HTTPResponseHandler
    let tls: TLSContext?
    private(set) var finished = false
    weak var connection: ClientConnection?
    var retried = false

    init(request: HTTPClientRequest, handler: HTTPResponseHandler, tls: TLSContext?) {
        self.request = request
        self.handler = handler
        self.tls = tls
    }

    func complete(trailers: HTTPHeaders) {
        guard !finished else { return }
        finished = true
        handler.complete(.success(trailers))
    }

    func fail(_ error: Error) {
        guard !finished else { return }
        finished = true
        handler.complete(.failure(error))
    }

    func cancel() {
        guard !finished else { return }
        // Finished first, so the close below cannot retry it on another connection.
        let connection = self.connection
        fail(HTTPClientError("request cancelled"))
        connection?.close()
    }
}

/// A client connection running one exchange at a time.
final class ClientConnection: ConnectionDelegate {
    let origin: ClientPool.Origin
    /// Weak: a client may be freed while its loop still runs, and a kept-alive connection that
    /// closes afterwards must find no pool rather than a dangling one.
    private weak var pool: ClientPool?
    private let configuration: HTTPClientConfiguration
    private let loop: EventLoop
    private var connection: Connection?
    private var parser: HTTPParser
    private var pending: [UInt8] = []
    private var exchange: ClientExchange?
    private var reused = false
    private var receivedBytes = false
    private var keepAlive = true
    private var deadline = NanoTime.distantFuture
    private var timerDeadline: NanoTime?
    private var deadlineReason = ""
    private var output: [UInt8] = []

    init(pool: ClientPool, origin: ClientPool.Origin, loop: EventLoop) {
        self.pool = pool
        self.origin = origin
        self.loop = loop
        configuration = pool.configuration
        parser = HTTPParser(.response, limits: configuration.limits)
    }

    var isUsable: Bool { !(connection?.isClosed ?? true) && exchange == nil }

    func connect(to address: SocketAddress, tls: TLSContext?, serverName: String) throws {
        connection = try Connection.connect(to: address, on: loop, tls: tls, serverName: serverName, delegate: self)
        setDeadline(.now() + configuration.connectTimeout, reason: "connect to \(origin.host):\(origin.port) timed out")
    }

    func run(_ exchange: ClientExchange, reused: Bool) {
        guard let connection else { return exchange.fail(HTTPClientError("connection closed")) }
        self.exchange = exchange
        self.reused = reused
        exchange.connection = self
        receivedBytes = false
        let request = exchange.request
        parser.respondingToHEAD = request.method == .head
        var head = HTTPRequestHead(method: request.method, target: request.target, headers: request.headers)
        if !head.headers.contains("host") { head.headers.add("Host", request.hostHeader) }
        if !request.body.isEmpty || [.post, .put, .patch].contains(request.method) {
            if !head.headers.contains("content-length") { head.headers.add("Content-Length", String(request.body.count)) }
        }
        keepAlive = head.keepAlive
        output.removeAll(keepingCapacity: true)
        do {
            try HTTPSerializer.write(head, into: &output)
        } catch {
            self.exchange = nil
            exchange.fail(error)
            return release()
        }
        output.append(contentsOf: request.body)
        let bytes = output
        connection.write(bytes)
        if reused {
            setDeadline(.now() + configuration.responseTimeout, reason: "no response within \(configuration.responseTimeout)")
        }
    }

    // MARK: Deadlines

    private func setDeadline(_ value: NanoTime, reason: String) {
        deadline = value
        deadlineReason = reason
        guard value != .distantFuture else { return }
        if let timerDeadline, timerDeadline <= value { return }
        timerDeadline = value
        loop.schedule(at: value) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        timerDeadline = nil
        guard let connection, !connection.isClosed else { return }
        if NanoTime.now() >= deadline {
            let reason = deadlineReason
            exchange?.fail(HTTPClientError(reason))
            exchange = nil
            connection.close()
        } else {
            setDeadline(deadline, reason: deadlineReason)
        }
    }

    // MARK: ConnectionDelegate

    func connectionDidBecomeActive(_ connection: Connection) {
        setDeadline(.now() + configuration.responseTimeout, reason: "no response within \(configuration.responseTimeout)")
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        receivedBytes = true
        if let exchange, let readTimeout = bodyReadTimeout(exchange), deadline == .distantFuture {
            setDeadline(.now() + readTimeout, reason: "body read timed out")
        }
        if pending.isEmpty {
            let consumed = process(bytes)
            if consumed < bytes.count && !connection.isClosed {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
        } else {
            pending.append(contentsOf: bytes)
            let buffered = pending
            let consumed = buffered.withUnsafeBytes { process($0) }
            if !connection.isClosed { pending.removeFirst(min(consumed, pending.count)) }
        }
    }

    private func process(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while let exchange, exchange === self.exchange {
            let event: HTTPParser.Event?
            do {
                let (consumed, next) = try parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                if let next, case .body(let range) = next {
                    exchange.handler.body(Array(UnsafeRawBufferPointer(rebasing: bytes[(offset + range.lowerBound)..<(offset + range.upperBound)])))
                }
                offset += consumed
                event = next
            } catch {
                self.exchange = nil
                exchange.fail(HTTPClientError("invalid response from \(origin.host):\(origin.port): \(error)"))
                connection?.close()
                return bytes.count
            }
            guard let event else { break }
            switch event {
            case .responseHead(let head):
                guard head.status >= 200 || head.status == 101 else { continue }
                keepAlive = keepAlive && head.keepAlive
                if let readTimeout = bodyReadTimeout(exchange) {
                    setDeadline(.now() + readTimeout, reason: "body read timed out")
                } else {
                    setDeadline(.distantFuture, reason: "")
                }
                exchange.handler.head(head)
            case .end(let trailers):
                self.exchange = nil
                exchange.connection = nil
                exchange.complete(trailers: trailers)
                release()
                return offset
            case .body, .requestHead:
                if let readTimeout = bodyReadTimeout(exchange) {
                    setDeadline(.now() + readTimeout, reason: "body read timed out")
                }
            }
        }
        return offset
    }

    private func bodyReadTimeout(_ exchange: ClientExchange) -> Duration? {
        exchange.request.bodyReadTimeout ?? configuration.bodyReadTimeout
    }

    private func release() {
        guard let connection, !connection.isClosed else { return }
        if keepAlive && pending.isEmpty && parser.isIdle, let pool {
            setDeadline(.now() + configuration.idleTimeout, reason: "idle")
            pool.release(self)
        } else {
            connection.close()
        }
    }

    func connectionDidReadEOF(_ connection: Connection) {
        if exchange != nil {
            do {
                if let event = try parser.finish(), case .end(let trailers) = event, let exchange {
                    self.exchange = nil
                    exchange.complete(trailers: trailers)
                }
            } catch {
                // reported below, when the connection closes
            }
        }
        connection.close()
    }

    func connectionWritabilityDidChange(_ connection: Connection) {}

    func connectionDidClose(_ connection: Connection, error: Error?) {
        pool?.remove(self)
        self.connection = nil
        guard let exchange else { return }
        self.exchange = nil
        // A pooled connection the server closed while idle: safe to retry once if nothing came back.
        let idempotent: Set<HTTPMethod> = [.get, .head, .put, .delete, .options]
        if reused && !receivedBytes && !exchange.retried && idempotent.contains(exchange.request.method), let pool {
            exchange.retried = true
            pool.start(exchange, on: loop)
            return
        }
        if let error {
            exchange.fail(error)
        } else {
            exchange.fail(HTTPClientError("connection to \(origin.host):\(origin.port) closed before the response was complete"))
        }
    }

    func close() {
        connection?.close()
    }
}
