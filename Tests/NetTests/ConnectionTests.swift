import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Net

/// A TCP echo built the way the proxy will build on Net: a listener, connections and a
/// delegate that stops reading while its writes are not drained.
final class EchoHandler: ConnectionDelegate {
    /// The most this side ever held unsent (read on the loop thread).
    var maxPending = 0
    func connectionDidBecomeActive(_ connection: Connection) {}
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        connection.write(bytes)
        let pending = connection.pendingWriteBytes
        maxPending = max(maxPending, pending)
    }
    func connectionDidReadEOF(_ connection: Connection) { connection.closeAfterFlush(lingering: false) }
    func connectionWritabilityDidChange(_ connection: Connection) {
        if connection.isWritable { connection.resumeReading() } else { connection.pauseReading() }
    }
    func connectionDidClose(_ connection: Connection, error: Error?) {}
}

@Test func echoAppliesBackpressureWhenThePeerDoesNotRead() async throws {
    let group = try EventLoopGroup(threads: 1)
    defer { group.shutdown() }
    let loop = group.next()
    let listener = try TCPListener(address: try SocketAddress(ip: "127.0.0.1", port: 0), reusePort: false)
    let handlers = UnsafeTransfer(Box<[EchoHandler]>([]))
    let transfer = UnsafeTransfer(listener)
    try await loop.submit { () throws(SystemError) in
        try transfer.value.start(on: loop) { connection in
            let handler = EchoHandler()
            handlers.value.value.append(handler)
            try? connection.start(delegate: handler)
        }
    }
    let client = try RawClient(port: listener.localAddress.port)
    // Send 8 MiB (more than the kernel buffers on both sides) without reading anything back.
    var small: Int32 = 64 * 1024
    setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
    let block = [UInt8]((0..<65521).map { UInt8(truncatingIfNeeded: $0 &* 31) })  // prime length: no alignment luck
    var payload: [UInt8] = []
    while payload.count < 8 << 20 { payload += block }
    let fd = client.fd
    let sending = payload
    let sentBytes = Atomic<Int>(0)
    // Blocking sends on a thread of its own: on the concurrency pool they could wait behind
    // other tests for longer than this test waits for the echo to hold data back.
    let sender = TestThread.detach {
        let payload = sending
        var offset = 0
        while offset < payload.count {
            let sent = payload[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }
            offset += sent
        }
        shutdown(fd, Int32(SHUT_WR))
        sentBytes.store(offset, ordering: .releasing)
    }
    // Wait (bounded) until the echo has had to hold data back: on a loaded machine that takes a while.
    var held = -1
    let deadline = ContinuousClock.now + .seconds(10)
    while held <= 0 && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(50))
        held = try await loop.submit { handlers.value.value.map(\.maxPending).max() ?? -1 }
    }
    // The echo stopped reading: what it holds is bounded by its high-water mark plus one read.
    #expect(held > 0)
    #expect(held <= 256 * 1024 + 64 * 1024)
    let (echoed, eof) = client.read { $0.count >= payload.count }
    sender.join()
    #expect(sentBytes.load(ordering: .acquiring) == payload.count)
    #expect(echoed == payload)
    #expect(eof || echoed.count == payload.count)
    _ = try await loop.submit { transfer.value.close() }
}

final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}
