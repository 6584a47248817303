import Glibc

/// A joinable thread of its own for blocking test helpers (blocking sends, accept loops): on
/// Swift's concurrency pool a blocked thread stalls every test that shares it.
public final class TestThread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void

    private init(_ body: @escaping () -> Void) { self.body = body }

    @discardableResult
    public static func detach(_ body: @escaping () -> Void) -> TestThread {
        let thread = TestThread(body)
        let box = Unmanaged.passRetained(thread)
        pthread_create(&thread.handle, nil, { raw in
            let thread = Unmanaged<TestThread>.fromOpaque(raw!).takeRetainedValue()
            thread.body()
            return nil
        }, box.toOpaque())
        return thread
    }

    public func join() { pthread_join(handle, nil) }
}
