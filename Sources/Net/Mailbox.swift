import CTandemShim
import Glibc
import Synchronization

/// Hands messages from other threads (an HTTP client's or server's loop) to the thread that runs
/// a state machine, which sleeps in `poll` on `fd` together with its signal descriptor.
public final class Mailbox<Message: Sendable>: Sendable {
    /// An eventfd that is readable while messages may be waiting.
    public let fd: Int32
    private let messages = Mutex<[Message]>([])

    public init() throws(SystemError) {
        fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError("eventfd", code: errno) }
    }

    deinit { close(fd) }

    public func post(_ message: Message) {
        messages.withLock { $0.append(message) }
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Every waiting message, oldest first.
    public func takeAll() -> [Message] {
        resetWakeUp()
        return messages.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
    }

    /// The oldest message, waiting for one until `deadline` (nil: no deadline); nil when it passed.
    public func next(until deadline: NanoTime?) -> Message? {
        while true {
            resetWakeUp()
            if let first = messages.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return first }
            let timeout = Poll.milliseconds(until: deadline)
            if timeout == 0 { return nil }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, timeout)
        }
    }

    private func resetWakeUp() {
        var count: UInt64 = 0
        _ = read(fd, &count, 8)
    }
}

public enum Poll {
    /// A `poll` timeout reaching `deadline`, rounded up so a wake-up is never early; -1 for none.
    public static func milliseconds(until deadline: NanoTime?) -> Int32 {
        guard let deadline else { return -1 }
        let remaining = deadline.nanoseconds - NanoTime.now().nanoseconds
        if remaining <= 0 { return 0 }
        return Int32(min((remaining + 999_999) / 1_000_000, Int64(Int32.max)))
    }

    /// Sleeps until `deadline` (the pause between probes).
    public static func pause(until deadline: NanoTime) {
        while case let timeout = milliseconds(until: deadline), timeout > 0 {
            _ = poll(nil, 0, timeout)
        }
    }
}
