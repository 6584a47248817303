import Dispatch
import Glibc
import Synchronization
import Telemetry

/// Runs `body` on a task, cancels it on SIGTERM/SIGINT, and waits for its exit status. Handlers
/// are `@Sendable` and set up here, outside any actor, so Dispatch may run them on its own threads.
func serveUntilSignalled(logger: Logger, _ body: @escaping @Sendable () async -> Int32) -> Int32 {
    let status = Mutex<Int32>(0)
    let done = DispatchSemaphore(value: 0)
    let task = Task { @Sendable in
        let code = await body()
        status.withLock { $0 = code }
        done.signal()
    }
    var sources: [DispatchSourceSignal] = []
    for number in [SIGTERM, SIGINT] {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { @Sendable in
            logger.info("signal received; draining", ["signal": .integer(Int(number))])
            task.cancel()
        }
        source.resume()
        sources.append(source)
    }
    done.wait()
    for source in sources { source.cancel() }
    return status.withLock { $0 }
}
