import Glibc
import CTandemShim
import Net

/// Whether a field describes one hop and is never forwarded (RFC 9110 §7.6.1), besides those the
/// Connection field names. Framing fields are written by us to match how we send the body.
/// Compares bytes against literals: this runs for every field of every message.
func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
    switch name.count {
    case 2: nameIs(name, "te")
    case 7: nameIs(name, "trailer") || nameIs(name, "upgrade")
    case 10: nameIs(name, "connection") || nameIs(name, "keep-alive")
    case 16: nameIs(name, "proxy-connection")
    case 17: nameIs(name, "transfer-encoding")
    default: false
    }
}

/// ASCII case-insensitive equality of a field name with a lower-case literal.
@inline(__always)
func nameIs(_ name: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
    asciiEqualFold(name, UnsafeRawBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount))
}

/// Copies the fields that go on to the next hop: not hop-by-hop and not named by Connection;
/// in requests not X-Forwarded-For either (the caller writes that one, extended).
func writeForwardedFields(_ headers: HTTPHeaders, request: Bool, into bytes: inout [UInt8]) {
    // Connection mostly carries only keep-alive, itself hop-by-hop: then no field needs
    // checking against it.
    var namesOtherFields = false
    headers.forEachElement(of: "connection") { token in
        if !token.isEmpty && !isHopByHop(token) { namesOtherFields = true }
    }
    headers.writeFields(into: &bytes) { name in
        if isHopByHop(name) || request && nameIs(name, "x-forwarded-for") { return false }
        return !(namesOtherFields && headers.containsToken("connection", name))
    }
}

private let idempotentMethods: Set<String> = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]

extension Array where Element == UInt8 {
    @inline(__always) mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }
}

/// One request on its way: what was routed where, and how far each direction has got.
final class Exchange {
    let head: HTTPRequestHead
    let cluster: ClusterRuntime
    var endpoint: HostPort
    var upstream: Upstream?
    /// The request body as sent so far, kept while small so a failed attempt can be replayed
    /// (the head is written again from `head`); nil once too large to keep.
    var replay: [UInt8]? = []
    var requestComplete = false
    let requestChunked: Bool
    var responseStarted = false
    var responseChunked = false
    var keepAlive: Bool
    var attempts = 1
    var isRetry = false
    let deadline: Int64
    static let replayLimit = 64 * 1024

    init(head: HTTPRequestHead, cluster: ClusterRuntime, endpoint: HostPort, deadline: Int64, keepAlive: Bool) {
        self.head = head
        self.cluster = cluster
        self.endpoint = endpoint
        self.deadline = deadline
        self.keepAlive = keepAlive
        requestChunked = head.headers.contains("transfer-encoding")
    }

    var mayRetry: Bool { replay != nil && attempts <= cluster.config.retries.attempts }
    var isIdempotent: Bool { idempotentMethods.contains(head.method.rawValue) }
}

/// A client connection on an HTTP listener: parses requests, routes each to an upstream
/// connection and relays the response, streaming both bodies with backpressure.
final class HTTPDownstream: ReactorHandler, Ticking, Corkable {
    let fd: Int32
    let peerIP: String
    let listener: ListenerSocket
    /// Held strongly (an unowned reference costs a check at every use): the reactor lets go of
    /// each connection when it closes, and stopAndJoin closes those left, so no cycle outlasts them.
    let worker: Worker
    var tickSlot = -1
    private var parser = HTTPParser(.request, limits: streamingLimits)
    private var inbound: [UInt8] = []
    private var out = OutboundQueue()
    private var exchange: Exchange?
    private var readingPaused = false
    private var peerEOF = false
    private var closing = false
    private var closed = false
    private var registered: UInt32 = 0
    private var idleDeadline: Int64

    init(fd: Int32, peerIP: String, listener: ListenerSocket) {
        self.fd = fd
        self.peerIP = peerIP
        self.listener = listener
        worker = listener.worker
        idleDeadline = listener.worker.reactor.now + Int64(listener.plan.config.idleTimeoutMilliseconds) * 1_000_000
    }

    func start() {
        worker.downstreamCount += 1
        worker.stats.add(.downstreamConnectionsActive)
        worker.reactor.adopt(fd, self)
        worker.reactor.startTicking(self)
        // The request usually arrives with the connection: read it now rather than after a trip
        // through epoll, and watch the socket once there is something to wait for.
        readAvailable(finQueued: false)
        updateInterest()
    }

    // MARK: Events

    func handle(events: UInt32) {
        if events & EPOLLOUT.rawValue != 0 { flush() }
        guard !closed else { return }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            if readingPaused || peerEOF {
                if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { close() }
            } else {
                readAvailable(finQueued: events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue) != 0)
            }
        }
    }

    /// Reads until the socket is drained: a short read, unless the peer's FIN is queued too.
    private func readAvailable(finQueued: Bool) {
        let scratch = worker.reactor.scratch
        while !closed && !readingPaused && !peerEOF {
            let n = Glibc.recv(fd, scratch.baseAddress!, scratch.count, 0)
            if n > 0 {
                received(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                if n < scratch.count && !finQueued { break }
            } else if n == 0 {
                peerEOF = true
                // A request cut short gets no answer. After a whole one the answer is still due,
                // or was just queued in this batch: it goes out, then the connection closes.
                if let exchange, !exchange.requestComplete { return close() }
                if exchange == nil { return closeAfterFlush() }
                updateInterest()
                return
            } else {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { close() }
                return
            }
        }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if inbound.isEmpty {
            let used = parse(bytes)
            if used < bytes.count && !closed { inbound.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...])) }
        } else {
            inbound.append(contentsOf: bytes)
            parseInbound()
        }
    }

    private func parseInbound() {
        guard !inbound.isEmpty else { return }
        let used = inbound.withUnsafeBytes { parse($0) }
        if closed { return }
        inbound.removeFirst(used)
    }

    /// Parses what it can; returns how many bytes it used. Stops at the next request while one is
    /// still being answered (pipelining), keeping the rest.
    private func parse(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while !closed {
            if let exchange, exchange.requestComplete {
                // The next request waits until this response is done; stop reading only if
                // one is already here, so the common case costs no epoll_ctl.
                if offset < bytes.count { pauseReading() }
                return offset
            }
            let result: (consumed: Int, event: HTTPParser.Event?)
            do {
                result = try parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            } catch {
                worker.stats.add(.downstreamRequestsInvalid)
                if exchange == nil || !(exchange!.responseStarted) {
                    abandonExchange()
                    respondLocally(error.status, "\(error)\n", close: true)
                } else {
                    close()
                }
                return bytes.count
            }
            let base = offset
            offset += result.consumed
            guard let event = result.event else { return offset }
            switch event {
            case .requestHead(let head):
                begin(head)
            case .body(let range):
                forwardBody(UnsafeRawBufferPointer(rebasing: bytes[(base + range.lowerBound)..<(base + range.upperBound)]))
            case .end(let trailers):
                endRequest(trailers)
            case .responseHead:
                break
            }
        }
        return offset
    }

    // MARK: Requests

    private func begin(_ head: HTTPRequestHead) {
        worker.stats.add(.downstreamRequests)
        idleDeadline = .max
        let plan = listener.plan
        let keepAlive = head.keepAlive && !closesAfterResponse
        guard let route = plan.table.match(host: head.headers["host"], path: head.path).map({ plan.targets[$0] }) else {
            worker.stats.add(.noRoute)
            return respondLocally(404, "no route\n", close: !keepAlive)
        }
        guard let cluster = route.pick(using: &worker.generator) else {
            worker.stats.add(.noRoute)
            return respondLocally(404, "no cluster\n", close: !keepAlive)
        }
        let now = worker.reactor.now
        let endpoint: HostPort
        switch cluster.admit(now: now) {
        case .endpoint(let address): endpoint = address
        case .overflow:
            worker.stats.add(.upstreamOverflow)
            return respondLocally(503, "upstream overflow\n", close: !keepAlive, extra: "x-tandem-overflow: true\r\n")
        case .noEndpoint:
            worker.stats.add(.noHealthyUpstream)
            return respondLocally(503, "no healthy upstream\n", close: !keepAlive)
        }
        let exchange = Exchange(head: head, cluster: cluster, endpoint: endpoint,
                                deadline: now + route.timeoutNanoseconds, keepAlive: keepAlive)
        self.exchange = exchange
        guard let upstream = connectUpstream(for: exchange) else { return }
        sendHead(of: exchange, to: upstream)
    }

    /// Serializes the request head into the worker's reusable buffer and sends it.
    private func sendHead(of exchange: Exchange, to upstream: Upstream) {
        worker.headBuffer.removeAll(keepingCapacity: true)
        writeRequestHead(exchange.head, chunked: exchange.requestChunked, endpoint: exchange.endpoint, into: &worker.headBuffer)
        worker.headBuffer.withUnsafeBytes { upstream.send($0) }
    }

    private func writeRequestHead(_ head: HTTPRequestHead, chunked: Bool, endpoint: HostPort, into bytes: inout [UInt8]) {
        bytes.append(head.method.rawValue)
        bytes.append(0x20)
        bytes.append(head.target)
        bytes.append(" HTTP/1.1\r\n")
        writeForwardedFields(head.headers, request: true, into: &bytes)
        if chunked { bytes.append("transfer-encoding: chunked\r\n") }
        // HTTP/1.0 clients may omit Host; HTTP/1.1 upstreams require it.
        if head.version == .http1_0 && !head.headers.contains("host") { bytes.append("host: \(endpoint)\r\n") }
        bytes.append("x-forwarded-for: ")
        head.headers.forEachValue(of: "x-forwarded-for") { value in
            bytes.append(contentsOf: value)
            bytes.append(", ")
        }
        bytes.append(peerIP)
        bytes.append("\r\n\r\n")
    }

    /// An idle pooled connection to the exchange's endpoint, or a new one.
    private func connectUpstream(for exchange: Exchange) -> Upstream? {
        worker.stats.add(.upstreamRequests)
        if let idle = worker.takeIdle(exchange.endpoint) {
            idle.attach(to: self, respondingToHEAD: exchange.head.method == .head)
            exchange.upstream = idle
            return idle
        }
        guard exchange.cluster.openConnection() else {
            worker.stats.add(.upstreamOverflow)
            exchange.cluster.finish(exchange.endpoint, nil, now: worker.reactor.now, retry: exchange.isRetry)
            self.exchange = nil
            respondLocally(503, "upstream overflow\n", close: true, extra: "x-tandem-overflow: true\r\n")
            return nil
        }
        let upstream = Upstream(address: exchange.endpoint, cluster: exchange.cluster, worker: worker)
        worker.stats.add(.upstreamConnections)
        guard upstream.connect(timeoutMilliseconds: exchange.cluster.config.connectTimeoutMilliseconds) else {
            exchange.cluster.connectFinished()
            exchange.cluster.closedConnection()
            upstreamFailed(connecting: true)
            return nil
        }
        upstream.attach(to: self, respondingToHEAD: exchange.head.method == .head)
        exchange.upstream = upstream
        return upstream
    }

    private func forwardBody(_ bytes: UnsafeRawBufferPointer) {
        guard let exchange, let upstream = exchange.upstream else { return }
        var frame: [UInt8] = []
        if exchange.requestChunked {
            frame.append(String(bytes.count, radix: 16) + "\r\n")
            frame.append(contentsOf: bytes)
            frame.append("\r\n")
        }
        if exchange.replay != nil {
            if exchange.replay!.count + bytes.count > Exchange.replayLimit {
                exchange.replay = nil
            } else if exchange.requestChunked {
                exchange.replay!.append(contentsOf: frame)
            } else {
                exchange.replay!.append(contentsOf: bytes)
            }
        }
        if exchange.requestChunked { frame.withUnsafeBytes { upstream.send($0) } } else { upstream.send(bytes) }
        if upstream.isFull { pauseReading() }
    }

    private func endRequest(_ trailers: HTTPHeaders) {
        guard let exchange else { return }
        if exchange.requestChunked {
            var last: [UInt8] = []
            try? HTTPSerializer.writeLastChunk(trailers: trailers, into: &last)
            exchange.replay?.append(contentsOf: last)
            last.withUnsafeBytes { exchange.upstream?.send($0) }
        }
        exchange.requestComplete = true
    }

    // MARK: Responses (called by the upstream)

    func upstreamReceived(_ upstream: Upstream, _ bytes: UnsafeRawBufferPointer) {
        guard let exchange, exchange.upstream === upstream else { return upstream.close() }
        holdSends()
        var offset = 0
        while offset < bytes.count || upstream.parser.isIdle == false {
            let result: (consumed: Int, event: HTTPParser.Event?)
            do {
                result = try upstream.parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            } catch {
                return upstreamBroke(outcome: .serverError, status: 502)
            }
            let base = offset
            offset += result.consumed
            guard let event = result.event else { break }
            switch event {
            case .responseHead(let head):
                startResponse(head, exchange)
            case .body(let range):
                relayBody(UnsafeRawBufferPointer(rebasing: bytes[(base + range.lowerBound)..<(base + range.upperBound)]), exchange)
            case .end:
                if offset < bytes.count { upstream.poisoned = true }
                return finishResponse(exchange)
            case .requestHead:
                break
            }
        }
        if out.isFull { upstream.pauseReading() }
    }

    private func startResponse(_ head: HTTPResponseHead, _ exchange: Exchange) {
        if head.status < 200 {
            // Informational: only 100 Continue is useful to relay, and only if the client asked.
            if head.status == 100 && exchange.head.expectsContinue { write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }
            return
        }
        exchange.responseStarted = true
        switch head.status {
        case 200..<300: worker.stats.add(.upstreamResponses2xx)
        case 300..<400: worker.stats.add(.upstreamResponses3xx)
        case 400..<500: worker.stats.add(.upstreamResponses4xx)
        default: worker.stats.add(.upstreamResponses5xx)
        }
        let bodiless = exchange.head.method == .head || head.status == 204 || head.status == 304
        let hasLength = head.headers.contains("content-length")
        let http11 = exchange.head.version == .http1_1
        if !bodiless && !hasLength {
            if http11 { exchange.responseChunked = true } else { exchange.keepAlive = false }
        }
        worker.headBuffer.removeAll(keepingCapacity: true)
        writeResponseHead(head, exchange, http11: http11, into: &worker.headBuffer)
        guard worker.headBuffer.withUnsafeBytes({ out.write(fd, $0) }) else { return close() }
        if out.pending > 0 { updateInterest() }
    }

    private func writeResponseHead(_ head: HTTPResponseHead, _ exchange: Exchange, http11: Bool, into bytes: inout [UInt8]) {
        bytes.append("HTTP/1.1 ")
        bytes.append(0x30 + UInt8(head.status / 100 % 10))
        bytes.append(0x30 + UInt8(head.status / 10 % 10))
        bytes.append(0x30 + UInt8(head.status % 10))
        bytes.append(0x20)
        bytes.append(head.reason)
        bytes.append("\r\n")
        writeForwardedFields(head.headers, request: false, into: &bytes)
        if exchange.responseChunked { bytes.append("transfer-encoding: chunked\r\n") }
        if closesAfterResponse || peerEOF { exchange.keepAlive = false }
        if !exchange.keepAlive {
            bytes.append("connection: close\r\n")
        } else if !http11 {
            bytes.append("connection: keep-alive\r\n")
        }
        bytes.append("\r\n")
    }

    private func relayBody(_ bytes: UnsafeRawBufferPointer, _ exchange: Exchange) {
        guard !bytes.isEmpty else { return }
        if exchange.responseChunked {
            var frame: [UInt8] = []
            frame.append(String(bytes.count, radix: 16) + "\r\n")
            frame.append(contentsOf: bytes)
            frame.append("\r\n")
            write(frame)
        } else {
            guard out.write(fd, bytes) else { return close() }
            if out.pending > 0 { updateInterest() }
        }
    }

    private func finishResponse(_ exchange: Exchange) {
        if exchange.responseChunked { write(Array("0\r\n\r\n".utf8)) }
        let upstream = exchange.upstream
        let status = upstream?.lastStatus ?? 200
        exchange.cluster.finish(exchange.endpoint, status >= 500 ? .serverError : .success, now: worker.reactor.now, retry: exchange.isRetry)
        self.exchange = nil
        if let upstream {
            upstream.detach()
            if exchange.requestComplete && upstream.reusable { upstream.returnToPool() } else { upstream.close() }
        }
        guard !closed else { return }
        if !exchange.keepAlive || !exchange.requestComplete || peerEOF {
            return closeAfterFlush()
        }
        startIdleTimer()
        readingPaused = false
        updateInterest()
        parseInbound()
    }

    /// The upstream connection failed: retry when that is safe, else answer with an error.
    func upstreamFailed(connecting: Bool) {
        guard let exchange else { return }
        let upstream = exchange.upstream
        let hadResponse = upstream?.receivedBytes ?? false
        exchange.upstream = nil
        let now = worker.reactor.now
        if connecting { worker.stats.add(.upstreamConnectFailures) }
        exchange.cluster.finish(exchange.endpoint, connecting ? .connectFailure : .serverError, now: now, retry: exchange.isRetry)
        if !hadResponse && !exchange.responseStarted && exchange.mayRetry && (connecting || exchange.isIdempotent) {
            exchange.attempts += 1
            if case .endpoint(let next) = exchange.cluster.admit(now: now, retry: true, excluding: exchange.endpoint) {
                worker.stats.add(.upstreamRetries)
                exchange.endpoint = next
                exchange.isRetry = true
                guard let retry = connectUpstream(for: exchange) else { return }
                sendHead(of: exchange, to: retry)
                exchange.replay!.withUnsafeBytes { retry.send($0) }
                return
            }
        }
        self.exchange = nil
        if exchange.responseStarted { return closeAfterFlush() }
        respondLocally(connecting ? 503 : 502, connecting ? "upstream connect error\n" : "upstream reset before response\n",
                       close: !exchange.requestComplete || !exchange.keepAlive)
    }

    private func upstreamBroke(outcome: LoadBalancer.Outcome, status: Int) {
        guard let exchange else { return }
        exchange.upstream?.detach()
        exchange.upstream?.close()
        exchange.upstream = nil
        exchange.cluster.finish(exchange.endpoint, outcome, now: worker.reactor.now, retry: exchange.isRetry)
        self.exchange = nil
        if exchange.responseStarted { return closeAfterFlush() }
        respondLocally(status, "bad upstream response\n", close: true)
    }

    /// The upstream closed: a read-until-close body ends here; anything else is a failure.
    func upstreamEOF(_ upstream: Upstream) {
        guard let exchange, exchange.upstream === upstream else { return }
        if let event = try? upstream.parser.finish(), case .end = event {
            upstream.poisoned = true
            return finishResponse(exchange)
        }
        upstream.detach()
        upstream.close()
        upstreamFailed(connecting: false)
    }

    func upstreamDrained() {
        if readingPaused && exchange?.requestComplete == false { resumeReading() }
    }

    // MARK: Local responses and output

    /// Answers without an upstream. A body the request still sends is framed by the parser and
    /// dropped, so the connection stays usable.
    private func respondLocally(_ status: Int, _ body: String, close shouldClose: Bool, extra: String = "") {
        var bytes: [UInt8] = []
        bytes.append("HTTP/1.1 \(status) \(HTTPResponseHead.reasonPhrase(status))\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\n\(extra)")
        if shouldClose { bytes.append("connection: close\r\n") }
        bytes.append("\r\n" + body)
        write(bytes)
        if shouldClose { return closeAfterFlush() }
        startIdleTimer()
        updateInterest()
    }

    private func abandonExchange() {
        guard let exchange else { return }
        exchange.cluster.finish(exchange.endpoint, nil, now: worker.reactor.now, retry: exchange.isRetry)
        if let upstream = exchange.upstream {
            upstream.detach()
            upstream.close()
        }
        self.exchange = nil
    }

    /// Within a batch of events, queue what is written and send it once at the batch's end.
    private func holdSends() {
        guard worker.reactor.inBatch && !out.corked else { return }
        out.corked = true
        worker.reactor.holdUntilBatchEnd(self)
    }

    /// Sends what was queued while corked.
    func uncork() {
        guard out.corked else { return }
        out.corked = false
        guard !closed else { return }
        flush()
    }

    private func write(_ bytes: [UInt8]) {
        holdSends()
        let ok = bytes.withUnsafeBytes { out.write(fd, $0) }
        guard ok else { return close() }
        if out.pending > 0 { updateInterest() }
    }

    private func flush() {
        guard out.flush(fd) else { return close() }
        if out.pending == 0 {
            if closing { return shutdownAndClose() }
            exchange?.upstream?.resumeReading()
        }
        updateInterest()
    }

    private func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    private func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    /// Brings what epoll watches in line with what the connection waits for. A socket not
    /// watched yet whose request is being answered is left alone until the answer is done:
    /// a `Connection: close` exchange then never costs an epoll_ctl. Nor does a corked one:
    /// its flush at the batch's end comes here with what is really left to send, so a response
    /// that goes out whole never asks for writability (two epoll_ctl per request saved).
    private func updateInterest() {
        guard !closed, !out.corked else { return }
        let watched = registered != 0
        var events = Reactor.edgeTriggered
        let answering = exchange?.requestComplete == true && !watched
        if !readingPaused && !peerEOF && !closing && !answering { events |= Reactor.readable }
        if out.pending > 0 { events |= EPOLLOUT.rawValue }
        guard events != registered, watched || events != Reactor.edgeTriggered else { return }
        registered = events
        if watched { worker.reactor.modify(fd, events: events) } else { worker.reactor.watch(fd, events: events) }
    }

    /// Sends what is queued (a response cut short still reaches the client as far as it got),
    /// then closes; a client that does not read it is let go at the idle timeout.
    private func closeAfterFlush() {
        closing = true
        startIdleTimer()
        // While corked, the flush at the end of the batch closes (or waits for writability).
        if out.pending == 0 { shutdownAndClose() } else { updateInterest() }
    }

    private func startIdleTimer() {
        idleDeadline = worker.reactor.now + Int64(listener.plan.config.idleTimeoutMilliseconds) * 1_000_000
    }

    private func shutdownAndClose() {
        // Half-close first so a client still sending does not turn our last response into a reset.
        shutdown(fd, Int32(SHUT_WR))
        close()
    }

    func abort() { close() }

    func close() {
        guard !closed else { return }
        abandonExchange()
        closed = true
        worker.reactor.stopTicking(self)
        worker.reactor.close(fd)
        worker.downstreamCount -= 1
        worker.stats.add(.downstreamConnectionsActive, -1)
    }

    /// The worker or this listener is draining: finish the current request, then close.
    private var isDraining: Bool { worker.draining || listener.retiredDeadline != nil }

    /// Responses say `Connection: close`: while draining, and on inbound listeners once the pod is
    /// going away (the client's next connection goes to a pod that is staying).
    private var closesAfterResponse: Bool {
        isDraining || (worker.endsInboundKeepAlive && listener.plan.config.direction == .inbound)
    }

    func tick(now: Int64) {
        if let deadline = listener.retiredDeadline, now > deadline { return close() }
        if let exchange {
            if now > exchange.deadline {
                worker.stats.add(.upstreamTimeouts)
                if exchange.responseStarted { return close() }
                abandonExchange()
                respondLocally(504, "upstream request timeout\n", close: true)
            } else if let upstream = exchange.upstream, !upstream.isConnected, now > upstream.connectDeadline {
                if upstream.handleEndedConnect() { return }
                upstream.detach()
                upstream.close()
                upstreamFailed(connecting: true)
            }
        } else if now > idleDeadline || (isDraining && out.pending == 0 && parser.isIdle && inbound.isEmpty) {
            close()
        }
    }
}

/// Bodies are streamed, never held, so their size is not the proxy's to limit.
let streamingLimits = HTTPLimits(maxHeaderBytes: 64 * 1024, maxBodyBytes: .max)
