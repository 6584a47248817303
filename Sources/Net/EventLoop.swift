import Glibc
import CTandemShim
import Synchronization

/// Something registered with an event loop for readiness events on one descriptor.
public protocol EventHandler: AnyObject {
    /// Called on the loop's thread with the epoll event bits.
    func handle(events: UInt32)
}

public struct TimerID: Hashable, Sendable {
    let value: UInt64
}

/// One epoll loop on its own thread. Everything registered on a loop is touched only from that
/// thread; other threads reach it with `execute`. (That invariant is what makes the
/// `@unchecked Sendable` below sound.)
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    private let epoll: Int32
    private let wakeFD: Int32
    private var handlers: [(generation: UInt32, handler: EventHandler)?] = []
    private var generation: UInt32 = 0
    private let inbox = Mutex<(tasks: [@Sendable () -> Void], woken: Bool)>(([], false))
    private var timers = TimerHeap()
    private let stopRequested = Atomic<Bool>(false)
    private let threadID = Atomic<UInt>(0)
    private var thread: pthread_t? = nil
    /// When the loop last woke up (loop thread only). Deadlines set while handling events count
    /// from it, like nginx's cached clock: early by at most one loop iteration, and no clock read
    /// per request.
    public private(set) var now = NanoTime.now()
    /// Read buffer shared by every connection on this loop: data is handed on before the next read.
    let scratch: UnsafeMutableRawBufferPointer

    init(index: Int) throws(SystemError) {
        self.index = index
        epoll = try Sys.call("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        wakeFD = try Sys.call("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
        scratch = .allocate(byteCount: 64 * 1024, alignment: 16)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = UInt64.max
        _ = try Sys.call("epoll_ctl(ADD eventfd)") { epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFD, &event) }
    }

    deinit {
        Sys.close(epoll)
        Sys.close(wakeFD)
        scratch.deallocate()
    }

    /// True on this loop's own thread.
    public var inEventLoop: Bool { threadID.load(ordering: .relaxed) == UInt(pthread_self()) }

    /// Runs `task` on the loop thread, soon (never inline, even when called from the loop).
    public func execute(_ task: @escaping @Sendable () -> Void) {
        let mustWake = inbox.withLock { state -> Bool in
            state.tasks.append(task)
            if state.woken { return false }
            state.woken = true
            return true
        }
        if mustWake {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    // MARK: Registration (loop thread only)

    func register(_ fd: Int32, events: UInt32, handler: EventHandler) throws(SystemError) {
        generation &+= 1
        while handlers.count <= Int(fd) { handlers.append(nil) }
        handlers[Int(fd)] = (generation, handler)
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(UInt32(fd)) | UInt64(generation) << 32
        do {
            _ = try Sys.call("epoll_ctl(ADD)") { epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) }
        } catch {
            handlers[Int(fd)] = nil
            throw error
        }
    }

    func modify(_ fd: Int32, events: UInt32) throws(SystemError) {
        guard let entry = handlers[Int(fd)] else { return }
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(UInt32(fd)) | UInt64(entry.generation) << 32
        _ = try Sys.call("epoll_ctl(MOD)") { epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) }
    }

    /// Forgets `fd` just before the caller closes it. The close takes it out of epoll by itself
    /// (every descriptor is close-on-exec, so no copy outlives a spawn), which spares a system
    /// call per connection; an event already queued for it finds no handler and is dropped.
    func deregister(_ fd: Int32) {
        guard Int(fd) < handlers.count else { return }
        handlers[Int(fd)] = nil
    }

    // MARK: Timers (loop thread only)

    /// Runs `action` on this loop at `deadline` unless cancelled first.
    @discardableResult
    public func schedule(at deadline: NanoTime, _ action: @escaping () -> Void) -> TimerID {
        timers.push(deadline: deadline, action: action)
    }

    @discardableResult
    public func schedule(after delay: Duration, _ action: @escaping () -> Void) -> TimerID {
        schedule(at: .now() + delay, action)
    }

    public func cancel(_ timer: TimerID) { timers.cancel(timer) }

    // MARK: Running

    func start() {
        thread = spawnThread { [self] in self.run() }
    }

    /// Resolves `host` on a short-lived thread (getaddrinfo blocks, and a loop must not) and
    /// delivers the result on this loop.
    public func resolve(host: String, port: Int, _ completion: @escaping @Sendable (Result<[SocketAddress], SystemError>) -> Void) {
        let thread = spawnThread { [self] in
            let result = Result { () throws(SystemError) in try SocketAddress.resolve(host: host, port: port) }
            execute { completion(result) }
        }
        pthread_detach(thread)
    }

    /// Asks the loop to return from `run` and waits for its thread.
    func stopAndJoin() {
        stopRequested.store(true, ordering: .relaxed)
        execute {}
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run() {
        threadID.store(UInt(pthread_self()), ordering: .relaxed)
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !stopRequested.load(ordering: .relaxed) {
            var timeout: Int32 = -1
            if let next = timers.nextDeadline {
                let delta = next.nanoseconds - NanoTime.now().nanoseconds
                timeout = delta <= 0 ? 0 : Int32(min(delta / 1_000_000 + 1, 60_000))
            }
            let count = epoll_wait(epoll, events, Int32(capacity), timeout)
            now = .now()
            if count > 0 {
                for i in 0..<Int(count) {
                    let data = events[i].data.u64
                    if data == UInt64.max {
                        var value: UInt64 = 0
                        _ = Glibc.read(wakeFD, &value, 8)
                        continue
                    }
                    let fd = Int(UInt32(truncatingIfNeeded: data))
                    let generation = UInt32(truncatingIfNeeded: data >> 32)
                    guard fd < handlers.count, let entry = handlers[fd], entry.generation == generation else { continue }
                    entry.handler.handle(events: events[i].events)
                }
            }
            runInbox()
            while let action = timers.popDue(now: now) { action() }
        }
        runInbox()
    }

    private func runInbox() {
        // Swap the array out rather than copy-and-clear, which would allocate every iteration.
        let tasks = inbox.withLock { state -> [@Sendable () -> Void] in
            state.woken = false
            if state.tasks.isEmpty { return [] }
            var taken: [@Sendable () -> Void] = []
            swap(&taken, &state.tasks)
            return taken
        }
        for task in tasks { task() }
    }
}

/// Starts a pthread running `body`.
private func spawnThread(_ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body))
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { raw in
        let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        body.run()
        return nil
    }, box.toOpaque())
    precondition(status == 0, "pthread_create: \(status)")
    return thread
}

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// A binary min-heap of deadlines. A cancelled timer's entry stays in the heap and is skipped
/// when due, but its action (and whatever the action holds) is released at once: an owner may
/// capture itself strongly and cancel when it closes, rather than hold a weak reference.
struct TimerHeap {
    private var entries: [(deadline: NanoTime, id: UInt64)] = []
    private var actions: [UInt64: () -> Void] = [:]
    private var nextID: UInt64 = 0

    var nextDeadline: NanoTime? { entries.first?.deadline }

    mutating func push(deadline: NanoTime, action: @escaping () -> Void) -> TimerID {
        nextID += 1
        entries.append((deadline, nextID))
        actions[nextID] = action
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
        return TimerID(value: nextID)
    }

    mutating func cancel(_ timer: TimerID) {
        actions[timer.value] = nil
    }

    /// The next due, uncancelled action (run it outside this heap: it may schedule or cancel).
    mutating func popDue(now: NanoTime) -> (() -> Void)? {
        while let first = entries.first, first.deadline <= now {
            if let action = actions.removeValue(forKey: pop()) { return action }
        }
        return nil
    }

    /// Removes the earliest entry and returns its id.
    private mutating func pop() -> UInt64 {
        entries.swapAt(0, entries.count - 1)
        let top = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count && entries[left].deadline < entries[smallest].deadline { smallest = left }
            if right < entries.count && entries[right].deadline < entries[smallest].deadline { smallest = right }
            if smallest == parent { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return top.id
    }
}

/// N event loops, one thread each.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let cursor = Atomic<Int>(0)

    /// Starts `threads` loops (default: one per CPU this process may use).
    public init(threads: Int = availableProcessors()) throws(SystemError) {
        tandem_ignore_sigpipe()
        var loops: [EventLoop] = []
        for index in 0..<max(1, threads) { loops.append(try EventLoop(index: index)) }
        self.loops = loops
        for loop in loops { loop.start() }
    }

    /// The next loop, round robin.
    public func next() -> EventLoop {
        loops[cursor.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Stops every loop and joins its thread. Close servers and clients first.
    public func shutdown() {
        for loop in loops { loop.stopAndJoin() }
    }
}
