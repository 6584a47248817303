import Glibc
import CTandemShim
import Synchronization
import Net

/// Something registered with a reactor for readiness events on one descriptor.
protocol ReactorHandler: AnyObject {
    func handle(events: UInt32)
    /// The reactor is stopping: release the descriptor and whatever else is held.
    func abort()
}

/// A connection whose sends wait for the end of the current batch of events.
protocol Corkable: AnyObject {
    func uncork()
}

/// Something the reactor visits on every tick (timeouts are coarse: a tick is 100 ms).
protocol Ticking: AnyObject {
    var tickSlot: Int { get set }
    func tick(now: Int64)
}

/// One worker's epoll loop on its own thread. Net's `EventLoop` keeps descriptor registration
/// internal, so the proxy runs this small loop of its own on Glibc. Everything registered here
/// is touched only on the loop thread; other threads reach it with `execute`.
final class Reactor: @unchecked Sendable {
    static let tickNanoseconds: Int64 = 100_000_000
    /// HTTP connections register edge-triggered: they read until a short read or EAGAIN and
    /// change their interest with `modify` (which reports readiness already there), so one event
    /// per arrival is enough, and epoll need not poll every socket it reported once more on the
    /// next wait, as it does for level-triggered ones.
    static let edgeTriggered = EPOLLET.rawValue
    /// Read interest of an edge-triggered connection. EPOLLRDHUP says the peer's FIN is already
    /// queued: then a short read is not all there is, the end of the stream is still to be read.
    static let readable = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
    let index: Int
    private let epoll: Int32
    private let wake: Int32
    private var handlers: [ReactorHandler?] = []
    /// Parallel to `handlers`: whether the descriptor is in the epoll set.
    private var watched: [Bool] = []
    private var ticking: [Ticking] = []
    private let inbox = Mutex<[@Sendable () -> Void]>([])
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?
    /// Read buffer shared by every connection on this loop: data is handed on before the next read.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// Cached at the top of each loop turn.
    private(set) var now: Int64 = NanoTime.now().nanoseconds
    var onTick: [(Int64) -> Void] = []
    /// True while one epoll batch is dispatched: sends are held and made together at its end,
    /// so waking a peer (which may preempt us on a busy machine) happens once per batch.
    private(set) var inBatch = false
    private var corked: [Corkable] = []

    /// Holds `item`'s sends until the batch ends (the caller marks its queue corked).
    func holdUntilBatchEnd(_ item: Corkable) { corked.append(item) }

    init(index: Int) throws(SocketError) {
        self.index = index
        epoll = try Socket.check(epoll_create1(Int32(EPOLL_CLOEXEC)), "epoll_create1")
        wake = try Socket.check(eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)), "eventfd")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = -1
        _ = epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event)
    }

    deinit {
        Glibc.close(epoll)
        Glibc.close(wake)
        scratch.deallocate()
    }

    // MARK: Registration (loop thread)

    /// Makes `handler` the owner of `fd` (its events go there, `stopAndJoin` aborts it) without
    /// watching it yet: a connection may get all it needs from one read made straight away.
    func adopt(_ fd: Int32, _ handler: ReactorHandler) {
        while handlers.count <= Int(fd) {
            handlers.append(nil)
            watched.append(false)
        }
        handlers[Int(fd)] = handler
        watched[Int(fd)] = false
    }

    /// Starts watching an adopted descriptor; like `modify`, reports readiness already there.
    func watch(_ fd: Int32, events: UInt32) {
        watched[Int(fd)] = true
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        _ = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
    }

    func add(_ fd: Int32, events: UInt32, _ handler: ReactorHandler) {
        adopt(fd, handler)
        watch(fd, events: events)
    }

    func modify(_ fd: Int32, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event)
    }

    /// Deregisters and closes `fd`. Watched descriptors are removed from epoll first: a process
    /// spawned meanwhile may briefly hold the socket open, and its events must not outlive it.
    func close(_ fd: Int32) {
        if Int(fd) < handlers.count {
            handlers[Int(fd)] = nil
            if watched[Int(fd)] { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil) }
            watched[Int(fd)] = false
        }
        Glibc.close(fd)
    }

    func startTicking(_ item: Ticking) {
        item.tickSlot = ticking.count
        ticking.append(item)
    }

    func stopTicking(_ item: Ticking) {
        let slot = item.tickSlot
        guard slot >= 0, slot < ticking.count, ticking[slot] === item else { return }
        let last = ticking.removeLast()
        if slot < ticking.count {
            ticking[slot] = last
            last.tickSlot = slot
        }
        item.tickSlot = -1
    }

    // MARK: Cross-thread

    func execute(_ task: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(task) }
        var one: UInt64 = 1
        _ = Glibc.write(wake, &one, 8)
    }

    func start() {
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        pthread_create(&thread, nil, { raw in
            let reactor = Unmanaged<Reactor>.fromOpaque(raw!).takeRetainedValue()
            reactor.run()
            return nil
        }, box.toOpaque())
        self.thread = thread
    }

    /// Stops the loop, waits for its thread, then closes everything still registered.
    func stopAndJoin() {
        stopping.store(true, ordering: .relaxed)
        execute {}
        if let thread { pthread_join(thread, nil) }
        thread = nil
        let remaining = handlers.compactMap { $0 }
        for handler in remaining { handler.abort() }
        handlers = []
        watched = []
        ticking = []
        onTick = []
    }

    private func run() {
        let capacity = 512
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        var nextTick = NanoTime.now().nanoseconds + Self.tickNanoseconds
        while !stopping.load(ordering: .relaxed) {
            let timeout = Int32(max(0, (nextTick - now) / 1_000_000 + 1))
            let count = epoll_wait(epoll, events, Int32(capacity), timeout)
            now = NanoTime.now().nanoseconds
            if count > 0 {
                inBatch = true
                for i in 0..<Int(count) {
                    let fd = events[i].data.fd
                    if fd < 0 {
                        var value: UInt64 = 0
                        _ = Glibc.read(wake, &value, 8)
                        runInbox()
                        continue
                    }
                    guard Int(fd) < handlers.count, let handler = handlers[Int(fd)] else { continue }
                    handler.handle(events: events[i].events)
                }
                inBatch = false
                for item in corked { item.uncork() }
                corked.removeAll(keepingCapacity: true)
            }
            if now >= nextTick {
                nextTick = now + Self.tickNanoseconds
                var index = ticking.count - 1
                while index >= 0 {
                    if index < ticking.count { ticking[index].tick(now: now) }
                    index -= 1
                }
                for action in onTick { action(now) }
            }
        }
        runInbox()
    }

    private func runInbox() {
        let tasks = inbox.withLock { tasks -> [@Sendable () -> Void] in
            defer { tasks.removeAll(keepingCapacity: true) }
            return tasks
        }
        for task in tasks { task() }
    }
}

/// The outbound half of a socket: writes what the kernel takes, queues the rest, and says when
/// the queue is past its high-water mark so the producer can stop reading (backpressure).
struct OutboundQueue {
    static let highWater = 256 * 1024
    private(set) var bytes: [UInt8] = []
    private var start = 0
    var pending: Int { bytes.count - start }
    var isFull: Bool { pending > Self.highWater }
    /// While corked, writes only queue: a response head and body leave in one send.
    var corked = false

    /// Returns false when the socket failed.
    mutating func write(_ fd: Int32, _ data: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        if pending == 0 && !corked {
            while offset < data.count {
                let n = Glibc.send(fd, data.baseAddress! + offset, data.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 { offset += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
                return false
            }
        }
        if offset < data.count { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[offset...])) }
        return true
    }

    /// Queues without trying the socket (before it is connected).
    mutating func queue(_ data: UnsafeRawBufferPointer) { bytes.append(contentsOf: data) }

    /// Sends queued bytes; returns false when the socket failed.
    mutating func flush(_ fd: Int32) -> Bool {
        while pending > 0 {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + start, pending, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { start += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            return false
        }
        if pending == 0 {
            bytes.removeAll(keepingCapacity: bytes.capacity <= 1 << 20)
            start = 0
        } else if start > 1 << 20 {
            bytes.removeFirst(start)
            start = 0
        }
        return true
    }
}
