import Dispatch
import Glibc
import Synchronization

/// Runs a long-lived server from the synchronous CLI: SIGINT and SIGTERM are blocked before any
/// thread starts (threads inherit the mask, so no thread can die of them), the server is started,
/// the calling thread waits for one of them with `sigwait`, and the server is stopped.
enum ServiceRunner {
    static func blockTerminationSignals() -> sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        return signals
    }

    /// Runs `body` to completion on the cooperative pool and waits for it here.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        Task {
            do {
                let value = try await body()
                result.withLock { $0 = .success(value) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Blocks until SIGINT or SIGTERM arrives; returns which.
    static func awaitTermination(_ signals: sigset_t) -> Int32 {
        var signals = signals
        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        return received
    }
}
