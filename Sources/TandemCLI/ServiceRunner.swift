import Dispatch
import Glibc
import Net
import Synchronization
import Telemetry

/// Readies this process to serve: raises its descriptor limit, and returns SIGTERM and SIGINT
/// blocked and queued in a signalfd so that one arriving at any moment (even while the server is
/// still starting) is kept, never lost. Call it before any thread starts: threads inherit the
/// blocked mask.
func startServing() throws(SystemError) -> SignalChannel {
    raiseDescriptorLimit()
    return try SignalChannel([SIGTERM, SIGINT])
}

/// Runs `body` on a task, cancels it when a stop signal arrives, and waits for its exit status.
/// The calling thread only waits for signals; the work runs on Swift's concurrency threads.
func serveUntilSignalled(_ signals: SignalChannel, logger: Logger, _ body: @escaping @Sendable () async -> Int32) -> Int32 {
    let status = Mutex<Int32>(0)
    let done = DispatchSemaphore(value: 0)
    let task = Task { @Sendable in
        let code = await body()
        status.withLock { $0 = code }
        done.signal()
    }
    var cancelled = false
    while done.wait(timeout: .now()) == .timedOut {
        var descriptor = pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, 50)
        for number in signals.read() where !cancelled {
            logger.info("signal received; draining", ["signal": .integer(Int(number))])
            task.cancel()
            cancelled = true
        }
    }
    return status.withLock { $0 }
}
