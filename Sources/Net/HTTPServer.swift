import Glibc
import Synchronization

/// A request as handlers see it: head, whole body, and who sent it.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    public var peer: SocketAddress?

    public init(head: HTTPRequestHead, body: [UInt8] = [], peer: SocketAddress? = nil) {
        self.head = head
        self.body = body
        self.peer = peer
    }

    public var method: HTTPMethod { head.method }
    public var path: Substring { head.path }
    public var query: Substring? { head.query }
    public var headers: HTTPHeaders { head.headers }
}

/// A response: a whole body, a stream written over time (watch, long-poll), or a whole answer
/// given later.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// Called once on the connection's loop with a writer the producer may keep and use
        /// from any thread; the body is sent chunked (HTTP/1.0: until close).
        case stream(@Sendable (HTTPResponseWriter) -> Void)
        /// Called once on the connection's loop with a responder that gives the real response
        /// later, from any thread: for a handler that waits on another server. The producer
        /// bounds the wait; the connection holds pipelined requests until then.
        case deferred(@Sendable (HTTPResponder) -> Void)
    }

    public var status: Int
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: Int = 200, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = .bytes(body)
    }

    public init(status: Int = 200, headers: HTTPHeaders = HTTPHeaders(), stream: @escaping @Sendable (HTTPResponseWriter) -> Void) {
        self.status = status
        self.headers = headers
        self.body = .stream(stream)
    }

    /// A response given later through the responder (see `Body.deferred`); status and headers
    /// come from that response.
    public static func deferred(_ start: @escaping @Sendable (HTTPResponder) -> Void) -> HTTPResponse {
        var response = HTTPResponse()
        response.body = .deferred(start)
        return response
    }

    /// A plain-text response.
    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }
}

/// The producing end of a streamed response. Safe to use from any thread; chunks are sent in
/// the order they are written from one thread.
public final class HTTPResponseWriter: Sendable {
    private let loop: EventLoop
    private let connection: UnsafeTransfer<HTTPServerConnection>
    private let state = Mutex<(closed: Bool, onClose: (@Sendable () -> Void)?)>((false, nil))

    init(loop: EventLoop, connection: HTTPServerConnection) {
        self.loop = loop
        self.connection = UnsafeTransfer(connection)
    }

    /// False once the client has gone or the stream was finished: stop producing.
    public var isOpen: Bool { !state.withLock { $0.closed } }

    /// Sends one chunk.
    public func write(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        let connection = self.connection
        onLoop { connection.value.streamWrite(bytes) }
    }

    /// Ends the body.
    public func finish(trailers: HTTPHeaders = HTTPHeaders()) {
        markClosed()
        let connection = self.connection
        onLoop { connection.value.streamFinish(trailers: trailers) }
    }

    /// Runs `handler` once when the stream ends for any reason (client gone, server stopping,
    /// `finish`); immediately if it already has.
    public func onClose(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.closed { return true }
            state.onClose = handler
            return false
        }
        if runNow { handler() }
    }

    /// Marks the stream closed; returns the close handler to run, if this call closed it.
    @discardableResult
    func markClosed() -> (@Sendable () -> Void)? {
        let handler = state.withLock { state -> (@Sendable () -> Void)? in
            if state.closed { return nil }
            state.closed = true
            defer { state.onClose = nil }
            return state.onClose ?? {}
        }
        handler?()
        return handler
    }

    private func onLoop(_ task: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { task() } else { loop.execute(task) }
    }
}

/// The answering end of a deferred response. Safe to use from any thread; only the first
/// answer counts, and one given after the client has gone is dropped.
public final class HTTPResponder: Sendable {
    private let loop: EventLoop
    private let connection: UnsafeTransfer<HTTPServerConnection>
    private let answered = Mutex(false)

    init(loop: EventLoop, connection: HTTPServerConnection) {
        self.loop = loop
        self.connection = UnsafeTransfer(connection)
    }

    /// False once answered or once the client has gone: stop working on the answer.
    public var isOpen: Bool { !answered.withLock { $0 } }

    /// Always lands in a later loop turn, so an answer given inside the handler's own turn
    /// finds the request set aside.
    public func respond(_ response: HTTPResponse) {
        guard markAnswered() else { return }
        let connection = self.connection
        loop.execute { connection.value.deferredAnswer(response) }
    }

    /// True if this call is the one that closed the responder.
    @discardableResult
    func markAnswered() -> Bool {
        answered.withLock { answered in
            defer { answered = true }
            return !answered
        }
    }
}

/// Handlers run on an event loop thread: they must not block. Work that waits belongs in a
/// streamed or deferred response completed from elsewhere.
public typealias HTTPHandler = @Sendable (HTTPRequest) -> HTTPResponse

/// (method, path) → handler. A path ending in `*` matches every path with that prefix; exact
/// paths win over prefixes, longer prefixes over shorter ones.
public struct HTTPRoutes: Sendable {
    private struct Route: Sendable {
        let method: HTTPMethod
        /// Without a prefix route's `*`, as bytes: compared with `memcmp`, where `==` between a
        /// Substring and a String took the slow path of Unicode comparison, for every request.
        /// A request target is ASCII (the parser allows no other byte), so the answers agree.
        let path: [UInt8]
        let isPrefix: Bool
        let handler: HTTPHandler

        func matches(_ requested: UnsafeBufferPointer<UInt8>) -> Bool {
            guard isPrefix ? requested.count >= path.count : requested.count == path.count else { return false }
            return path.isEmpty || path.withUnsafeBufferPointer { memcmp($0.baseAddress!, requested.baseAddress!, path.count) == 0 }
        }
    }
    private var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: HTTPMethod, _ path: String, _ handler: @escaping HTTPHandler) {
        let isPrefix = path.hasSuffix("*")
        routes.append(Route(method: method, path: Array((isPrefix ? String(path.dropLast()) : path).utf8), isPrefix: isPrefix, handler: handler))
        routes.sort { lhs, rhs in
            if lhs.isPrefix != rhs.isPrefix { return !lhs.isPrefix }
            return lhs.path.count > rhs.path.count
        }
    }

    public enum Match {
        case handler(HTTPHandler)
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    public func match(method: HTTPMethod, path: Substring) -> Match {
        var path = path
        return path.withUTF8 { match(method: method, path: $0) }
    }

    /// The server's match, on the path's bytes (`HTTPRequestHead.withPath`).
    func match(method: HTTPMethod, path requested: UnsafeBufferPointer<UInt8>) -> Match {
        var allowed: [HTTPMethod] = []
        var matched: Int? = nil
        // Routes are read in place, by index: a loop over copies retains and releases every
        // field of every route it passes, for every request.
        for index in routes.indices where routes[index].matches(requested) {
            if let matched, routes[matched].path != routes[index].path { break }
            matched = index
            if routes[index].method == method || (method == .head && routes[index].method == .get) {
                return .handler(routes[index].handler)
            }
            allowed.append(routes[index].method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }
}

public struct HTTPServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port; see `HTTPServer.localAddress`.
    public var port: Int
    public var tls: TLSContext?
    public var limits: HTTPLimits
    /// From the first byte of a request (or the accept) until its head is complete: slowloris.
    public var headerReadTimeout: Duration
    /// Between requests on a kept-alive connection.
    public var idleTimeout: Duration
    /// Without progress while a request body is read.
    public var bodyReadTimeout: Duration
    /// While the client does not drain our writes (backpressure).
    public var writeTimeout: Duration
    public var maxRequestsPerConnection: Int
    public var maxConnectionsPerLoop: Int
    /// Told why a connection ended abnormally (failed TLS handshake, reset, I/O error), on the
    /// loop thread: for logs and metrics. Timeouts and clean closes are not reported.
    public var onConnectionError: (@Sendable (SocketAddress?, Error) -> Void)?

    public init(host: String = "127.0.0.1", port: Int = 0, tls: TLSContext? = nil, limits: HTTPLimits = HTTPLimits(),
                headerReadTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60),
                bodyReadTimeout: Duration = .seconds(30), writeTimeout: Duration = .seconds(30),
                maxRequestsPerConnection: Int = 10_000, maxConnectionsPerLoop: Int = 16_384,
                onConnectionError: (@Sendable (SocketAddress?, Error) -> Void)? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
        self.limits = limits
        self.headerReadTimeout = headerReadTimeout
        self.idleTimeout = idleTimeout
        self.bodyReadTimeout = bodyReadTimeout
        self.writeTimeout = writeTimeout
        self.maxRequestsPerConnection = maxRequestsPerConnection
        self.maxConnectionsPerLoop = maxConnectionsPerLoop
        self.onConnectionError = onConnectionError
    }
}

/// An HTTP/1.1 server: one listener per loop on a shared port, each connection served by the
/// loop with the fewest, a route table, strict parsing, slow-client timeouts and graceful
/// shutdown.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    let routes: HTTPRoutes
    /// The configured timeouts in nanoseconds, converted once rather than per request.
    let timeouts: Timeouts
    private let group: EventLoopGroup
    private let perLoop: [UnsafeTransfer<ServerLoopState>]
    /// Where the search for the least loaded loop starts, so ties rotate.
    private let cursor = Atomic<Int>(0)
    private let address = Mutex<SocketAddress?>(nil)

    public init(group: EventLoopGroup, configuration: HTTPServerConfiguration = HTTPServerConfiguration(), routes: HTTPRoutes) {
        self.group = group
        self.configuration = configuration
        self.routes = routes
        timeouts = Timeouts(configuration)
        perLoop = group.loops.map { _ in UnsafeTransfer(ServerLoopState()) }
    }

    /// The bound address (after `start`).
    public var localAddress: SocketAddress? { address.withLock { $0 } }
    public var port: Int { localAddress?.port ?? 0 }

    /// Binds (one SO_REUSEPORT socket per loop, so accepting is shared) and starts accepting.
    /// The kernel picks a listener by a hash of the client's address, so each accepted socket
    /// is then placed on the loop with the fewest connections: with a few long-lived keep-alive
    /// connections (an API server's), the hash alone gave one loop 60% of the work, and that
    /// loop's queue set the p99.
    public func start() async throws {
        var bindAddress = try SocketAddress(ip: configuration.host, port: configuration.port)
        var listeners: [TCPListener] = []
        do {
            for _ in group.loops {
                let listener = try TCPListener(address: bindAddress, reusePort: true)
                if listeners.isEmpty { bindAddress = try SocketAddress(ip: configuration.host, port: listener.localAddress.port) }
                listeners.append(listener)
            }
        } catch {
            for listener in listeners { listener.close() }
            throw error
        }
        address.withLock { $0 = listeners[0].localAddress }
        for (index, loop) in group.loops.enumerated() {
            let listener = UnsafeTransfer(listeners[index])
            let state = perLoop[index]
            try await loop.submit { [self] () throws(SystemError) in
                state.value.listener = listener.value
                try listener.value.start(on: loop) { [self] fd, peer in place(fd, peer) }
            }
        }
    }

    /// Gives a new socket to the loop with the fewest connections (counted at once, so a burst
    /// spreads), which sets it up and serves it.
    private func place(_ fd: Int32, _ peer: SocketAddress) {
        let start = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        // Only the states' `load` is read here, off their loops: it is immutable and atomic.
        func connections(_ index: Int) -> Int { perLoop[index].value.load.connections.load(ordering: .relaxed) }
        var chosen = start % perLoop.count
        for step in 1..<perLoop.count {
            let index = (start + step) % perLoop.count
            if connections(index) < connections(chosen) { chosen = index }
        }
        perLoop[chosen].value.load.connections.add(1, ordering: .relaxed)
        let loop = group.loops[chosen]
        let state = perLoop[chosen]
        let setUp: @Sendable () -> Void = { [self] in
            // A failed TLS setup affects only that client.
            guard let connection = try? Connection.accepted(loop: loop, fd: fd, peer: peer, tls: configuration.tls) else {
                state.value.load.connections.subtract(1, ordering: .relaxed)
                return
            }
            accept(connection, state: state.value)
        }
        if loop.inEventLoop { setUp() } else { loop.execute(setUp) }
    }

    private func accept(_ connection: Connection, state: ServerLoopState) {
        guard !state.draining, state.connections.count < configuration.maxConnectionsPerLoop else {
            state.load.connections.subtract(1, ordering: .relaxed)
            return connection.close()
        }
        let handler = HTTPServerConnection(server: self, connection: connection, state: state)
        state.connections[ObjectIdentifier(handler)] = handler
        do {
            try connection.start(delegate: handler)
        } catch {
            state.remove(handler)
        }
    }

    /// Stops accepting, lets in-flight requests finish for up to `gracePeriod`, then closes
    /// whatever is left. Returns when every connection is closed.
    public func shutdown(gracePeriod: Duration = .seconds(10)) async {
        await withTaskGroup(of: Void.self) { tasks in
            for (index, loop) in group.loops.enumerated() {
                let state = perLoop[index]
                tasks.addTask {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        loop.execute {
                            state.value.beginDrain(gracePeriod: gracePeriod, loop: loop) { done.resume() }
                        }
                    }
                }
            }
        }
    }

    /// Open connections per loop (for tests and metrics).
    public func connectionCounts() async -> [Int] {
        var counts: [Int] = []
        for (index, loop) in group.loops.enumerated() {
            let state = perLoop[index]
            counts.append((try? await loop.submit { state.value.connections.count }) ?? 0)
        }
        return counts
    }
}

struct Timeouts {
    let headerRead, idle, bodyRead, write: Int64

    init(_ configuration: HTTPServerConfiguration) {
        headerRead = configuration.headerReadTimeout.nanoseconds
        idle = configuration.idleTimeout.nanoseconds
        bodyRead = configuration.bodyReadTimeout.nanoseconds
        write = configuration.writeTimeout.nanoseconds
    }
}

/// How many connections a loop has, read by the acceptor on another thread.
final class LoopLoad: Sendable {
    let connections = Atomic<Int>(0)
}

/// One loop's share of a server: its listener and connections (loop-confined).
final class ServerLoopState {
    var listener: TCPListener?
    var connections: [ObjectIdentifier: HTTPServerConnection] = [:]
    var draining = false
    /// Counted from the moment a connection is handed to this loop.
    let load = LoopLoad()
    private var drained: (() -> Void)?

    func beginDrain(gracePeriod: Duration, loop: EventLoop, drained: @escaping () -> Void) {
        draining = true
        listener?.close()
        listener = nil
        self.drained = drained
        for connection in Array(connections.values) { connection.drain() }
        loop.schedule(after: gracePeriod) { [self] in
            for connection in Array(connections.values) { connection.connection.close() }
        }
        checkDrained()
    }

    func remove(_ connection: HTTPServerConnection) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        load.connections.subtract(1, ordering: .relaxed)
        checkDrained()
    }

    private func checkDrained() {
        guard draining, connections.isEmpty, let drained else { return }
        self.drained = nil
        drained()
    }
}

/// One client connection: parses requests, runs handlers in order, writes responses.
final class HTTPServerConnection: ConnectionDelegate {
    let connection: Connection
    private let server: HTTPServer
    private unowned let state: ServerLoopState
    private var parser: HTTPParser
    private var pending: [UInt8] = []
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Set while a body that was still arriving when its head was parsed is read into `body`,
    /// sized to its Content-Length at once: how many of its bytes are in place.
    private var bodyBytesPlaced: Int?
    private var output: [UInt8] = []
    private var requestsServed = 0
    private var closeAfterResponse = false
    private var draining = false
    private var stream: HTTPResponseWriter?
    private var streamChunked = false
    /// A deferred response not yet given, and the request it answers.
    private var awaiting: (responder: HTTPResponder, request: HTTPRequestHead)?
    /// Set while `process` runs, so callbacks it triggers do not re-enter it.
    private var processing = false

    private enum Phase { case idle, head, body, responding }
    private var phase: Phase = .head
    private var deadline = NanoTime.distantFuture
    /// The one pending timer, due at or before `deadline`.
    private var timer: (deadline: NanoTime, id: TimerID)?

    init(server: HTTPServer, connection: Connection, state: ServerLoopState) {
        self.server = server
        self.connection = connection
        self.state = state
        parser = HTTPParser(.request, limits: server.configuration.limits)
        // The header deadline starts at accept: a client that connects and says nothing, or
        // stalls the TLS handshake, is closed like one that sends a head byte by byte.
        setDeadline(fromNow(server.timeouts.headerRead))
    }

    // MARK: Deadlines

    private func fromNow(_ nanoseconds: Int64) -> NanoTime {
        NanoTime(nanoseconds: connection.loop.now.nanoseconds &+ nanoseconds)
    }

    /// Moves the deadline; a timer is set only when it comes earlier than the pending one, so
    /// requests on a busy connection set none.
    private func setDeadline(_ value: NanoTime) {
        deadline = value
        guard value != .distantFuture else { return }
        if let timer {
            if timer.deadline <= value { return }
            connection.loop.cancel(timer.id)
        }
        // Held strongly until it fires or the close cancels it: a weak reference would give this
        // object a side table and slow its every retain and release.
        timer = (value, connection.loop.schedule(at: value) { [self] in timerFired() })
    }

    private func timerFired() {
        timer = nil
        guard !connection.isClosed else { return }
        if connection.loop.now >= deadline {
            connection.close()
        } else {
            setDeadline(deadline)
        }
    }

    // MARK: ConnectionDelegate

    func connectionDidBecomeActive(_ connection: Connection) {}

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        if phase == .body { setDeadline(fromNow(server.timeouts.bodyRead)) }
        if pending.isEmpty && !processing {
            let consumed = process(bytes)
            if consumed < bytes.count && !connection.isClosed {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
        } else {
            pending.append(contentsOf: bytes)
            processPending()
        }
        // While a response streams, later pipelined requests wait; do not buffer them forever.
        if phase == .responding && pending.count > server.configuration.limits.maxHeaderBytes {
            connection.pauseReading()
        }
        if phase == .idle && !parser.isIdle { startHead() }
    }

    func connectionDidReadEOF(_ connection: Connection) {
        // A client that half-closes after its last request still gets the answer, but one that
        // leaves a stream (a watch) is gone: end the stream so its producer stops.
        if phase == .responding && stream == nil { closeAfterResponse = true } else { connection.close() }
    }

    func connectionWritabilityDidChange(_ connection: Connection) {
        if connection.isWritable {
            // A stream (watch) may stay quiet for as long as it likes once the client drains.
            setDeadline(phaseDeadline())
            if phase == .responding && stream == nil { return }
            connection.resumeReading()
            if !pending.isEmpty && phase != .responding { processPending() }
        } else {
            connection.pauseReading()
            setDeadline(fromNow(server.timeouts.write))
        }
    }

    func connectionDidClose(_ connection: Connection, error: Error?) {
        if let timer { connection.loop.cancel(timer.id) }
        timer = nil
        if let error, let report = server.configuration.onConnectionError { report(connection.peerAddress, error) }
        if let stream { stream.markClosed() }
        stream = nil
        awaiting?.responder.markAnswered()
        awaiting = nil
        state.remove(self)
    }

    // MARK: Requests

    private func processPending() {
        guard !processing else { return }
        let buffered = pending
        let consumed = buffered.withUnsafeBytes { process($0) }
        if connection.isClosed { return }
        pending.removeFirst(consumed)
    }

    /// Parses and answers what `bytes` holds; returns how much was consumed.
    private func process(_ bytes: UnsafeRawBufferPointer) -> Int {
        processing = true
        defer { processing = false }
        var offset = 0
        while phase != .responding && !connection.isClosed {
            var consumed = 0
            let event: HTTPParser.Event?
            do {
                event = try parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...]), consumed: &consumed)
            } catch {
                reject(error)
                return bytes.count
            }
            let start = offset
            offset += consumed
            // Events and heads are moved, not copied: a copy retains every string a head holds.
            // The optional itself is switched on: unwrapped first, or held in a tuple, it was
            // destroyed through its type metadata, about 170 instructions at each of a request's
            // four parser calls.
            switch consume event {
            case nil:
                return offset
            case .requestHead(let requestHead)?:
                let sendContinue = offset == bytes.count && requestHead.version == .http1_1 && requestHead.expectsContinue
                head = consume requestHead
                startBody(arrived: bytes.count - offset)
                phase = .body
                setDeadline(fromNow(server.timeouts.bodyRead))
                if sendContinue {
                    connection.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                }
            case .body(let range)?:
                place(UnsafeRawBufferPointer(rebasing: bytes[(start + range.lowerBound)..<(start + range.upperBound)]))
            case .end?:
                guard let requestHead = head.take() else { break }
                respond(to: HTTPRequest(head: requestHead, body: body, peer: connection.peerAddress))
                if !connection.isWritable { break }
            case .responseHead?:
                break
            }
            if !connection.isWritable { break }
        }
        return offset
    }

    /// Makes room for the body of the head just parsed, `arrived` bytes of which came with it.
    /// One with at least a TLS record (16 KiB) still to come, up to 1 MiB (a head alone must not
    /// reserve the 8 MiB limit), gets a new array of its full length, which later reads fill in
    /// place (`readDestination`): a 250 KB body was copied from the loop's scratch buffer record
    /// by record, 4% of its request's instructions. With less to come, the new array costs more
    /// than the copy it saves (6.4 KB: 700 instructions against 650). Its bytes are left
    /// uninitialised here; the handler sees the array only once the parser has delivered all of
    /// them. Other bodies are appended into the reused array.
    private func startBody(arrived: Int) {
        if let length = parser.fixedBodyBytesRemaining, length - arrived >= 16 << 10, length <= 1 << 20 {
            body = [UInt8](unsafeUninitializedCapacity: length) { _, initialized in initialized = length }
            bodyBytesPlaced = 0
        } else {
            body.removeAll(keepingCapacity: true)
            if let length = parser.fixedBodyBytesRemaining { body.reserveCapacity(min(length, 1 << 20)) }
            bodyBytesPlaced = nil
        }
    }

    /// Adds body bytes the parser reported; those read straight into the body are in place already.
    private func place(_ bytes: UnsafeRawBufferPointer) {
        guard let placed = bodyBytesPlaced else { return body.append(contentsOf: bytes) }
        body.withUnsafeMutableBytes { storage in
            let target = storage.baseAddress! + placed
            if UnsafeRawPointer(target) != bytes.baseAddress { target.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        }
        bodyBytesPlaced = placed + bytes.count
    }

    /// The rest of a body being read in place, while nothing else is buffered: `body` is this
    /// connection's alone until its request is answered, and keeps its size, so its storage
    /// stays where it is until the read is reported.
    func readDestination(for connection: Connection) -> UnsafeMutableRawBufferPointer? {
        guard let placed = bodyBytesPlaced, phase == .body, pending.isEmpty, !processing,
              let remaining = parser.fixedBodyBytesRemaining, remaining > 0 else { return nil }
        return body.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[placed..<placed + remaining]) }
    }

    private func startHead() {
        phase = .head
        setDeadline(fromNow(server.timeouts.headerRead))
    }

    private func phaseDeadline() -> NanoTime {
        switch phase {
        case .idle: fromNow(server.timeouts.idle)
        case .head: fromNow(server.timeouts.headerRead)
        case .body: fromNow(server.timeouts.bodyRead)
        case .responding: .distantFuture
        }
    }

    private func reject(_ error: HTTPParseError) {
        closeAfterResponse = true
        writeResponse(.text(error.status, "\(error)\n"), to: HTTPRequestHead(method: .get, target: "/"))
        connection.closeAfterFlush()
    }

    private func respond(to request: HTTPRequest) {
        requestsServed += 1
        if !request.head.keepAlive || draining || requestsServed >= server.configuration.maxRequestsPerConnection {
            closeAfterResponse = true
        }
        let response: HTTPResponse
        let routes = server.routes, method = request.head.method  // a closure capturing `request` copies it
        switch request.head.withPath({ routes.match(method: method, path: $0) }) {
        case .handler(let handler):
            response = handler(request)
        case .methodNotAllowed(let allowed):
            var notAllowed = HTTPResponse.text(405, "method not allowed\n")
            notAllowed.headers.add("Allow", allowed.map(\.rawValue).joined(separator: ", "))
            response = notAllowed
        case .notFound:
            response = .text(404, "not found\n")
        }
        phase = .responding
        setDeadline(.distantFuture)
        writeResponse(response, to: request.head)
        if stream == nil && awaiting == nil { responseDone() }
    }

    func deferredAnswer(_ response: HTTPResponse) {
        guard let awaiting, !connection.isClosed else { return }
        self.awaiting = nil
        writeResponse(response, to: awaiting.request)
        if stream == nil && self.awaiting == nil { responseDone() }
    }

    private func writeResponse(_ response: HTTPResponse, to request: HTTPRequestHead) {
        let bodyAllowed = request.method != .head && response.status >= 200 && response.status != 204 && response.status != 304
        output.removeAll(keepingCapacity: true)
        switch response.body {
        case .bytes(let bytes):
            let needsLength = response.status >= 200 && response.status != 204 && response.status != 304
                && !response.headers.contains("content-length")
            // Room for the head as well: a new connection's buffer would otherwise grow 4 times.
            output.reserveCapacity(bytes.count + 512)
            guard serialize(response.status, response.headers, contentLength: needsLength ? bytes.count : nil, for: request) else { return }
            if bodyAllowed { output.append(contentsOf: bytes) }
            send(output)
        case .stream(let produce):
            streamChunked = request.version == .http1_1 && bodyAllowed
            var headers = response.headers
            if streamChunked {
                headers.set("Transfer-Encoding", "chunked")
            } else {
                closeAfterResponse = true
            }
            guard serialize(response.status, headers, for: request) else { return }
            send(output)
            guard bodyAllowed else { return }
            let writer = HTTPResponseWriter(loop: connection.loop, connection: self)
            stream = writer
            produce(writer)
        case .deferred(let start):
            let responder = HTTPResponder(loop: connection.loop, connection: self)
            awaiting = (responder, request)
            start(responder)
        }
    }

    /// Writes `bytes` (a copy of `output`, which callbacks during the write may reuse).
    private func send(_ bytes: [UInt8]) {
        connection.write(bytes)
    }

    /// Writes a response head into `output`, with the Connection field this connection's fate calls
    /// for; a handler's invalid header becomes a 500.
    private func serialize(_ status: Int, _ headers: HTTPHeaders, contentLength: Int? = nil, for request: HTTPRequestHead) -> Bool {
        // HTTP/1.0 closes unless told otherwise.
        let connectionField: StaticString? = closeAfterResponse ? "close" : request.version == .http1_0 ? "keep-alive" : nil
        do {
            try HTTPSerializer.writeResponseHead(status: status, reason: HTTPResponseHead.reasonPhrase(status), headers: headers,
                                                 contentLength: contentLength, connection: connectionField, into: &output)
            return true
        } catch {
            output.removeAll(keepingCapacity: true)
            closeAfterResponse = true
            let body = Array("invalid response: \(error)\n".utf8)
            var fallback = HTTPResponseHead(status: 500, headers: ["Connection": "close", "Content-Type": "text/plain"])
            fallback.headers.add("Content-Length", String(body.count))
            try? HTTPSerializer.write(fallback, into: &output)
            output.append(contentsOf: body)
            send(output)
            connection.closeAfterFlush()
            return false
        }
    }

    private func responseDone() {
        if closeAfterResponse {
            connection.closeAfterFlush(lingering: !pending.isEmpty || !parser.isIdle)
            return
        }
        phase = .idle
        setDeadline(fromNow(server.timeouts.idle))
        if !connection.isWritable || processing { return }
        connection.resumeReading()
        if !pending.isEmpty { processPending() }
        if phase == .idle && !parser.isIdle { startHead() }
    }

    // MARK: Streams and draining

    func streamWrite(_ bytes: [UInt8]) {
        guard stream != nil, !connection.isClosed else { return }
        if streamChunked {
            output.removeAll(keepingCapacity: true)
            HTTPSerializer.writeChunk(bytes, into: &output)
            send(output)
        } else {
            connection.write(bytes)
        }
    }

    func streamFinish(trailers: HTTPHeaders) {
        guard let writer = stream, !connection.isClosed else { return }
        stream = nil
        writer.markClosed()
        if streamChunked {
            output.removeAll(keepingCapacity: true)
            try? HTTPSerializer.writeLastChunk(trailers: trailers, into: &output)
            send(output)
        }
        if draining { closeAfterResponse = true }
        responseDone()
    }

    /// Server shutdown: close now if between requests, else after the current response.
    func drain() {
        draining = true
        if phase == .idle || (phase == .head && parser.isIdle) {
            connection.close()
        } else {
            closeAfterResponse = true
        }
    }
}

/// Carries a loop-confined value through a `@Sendable` closure to the loop that owns it.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension EventLoop {
    /// Runs `body` on the loop and returns its result to the caller.
    public func submit<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            execute {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }
}
