import Glibc
import Net
import Synchronization

/// Calls to the proxy's admin endpoints (`/ready`, `/quitquitquit`, `/drain_listeners`), each
/// reduced to an `AdminOutcome` and bounded by its own timeout: a hung admin endpoint costs one
/// timeout, never a hang.
final class ProxyAdmin: Sendable {
    private let client: HTTPClient
    private let requestTimeout: Duration

    init(loop: EventLoop, requestTimeout: Duration) {
        // The client's own timeouts are a backstop; `request` enforces `requestTimeout` itself so
        // that a timeout is reported as such.
        let backstop = requestTimeout + .seconds(1)
        client = HTTPClient(loop: loop, configuration: HTTPClientConfiguration(
            connectTimeout: backstop, responseTimeout: backstop, bodyReadTimeout: backstop,
            maxIdleConnectionsPerOrigin: 1))
        self.requestTimeout = requestTimeout
    }

    /// Sends one request; `completion` runs once, on the client's loop thread.
    func request(_ method: HTTPMethod, _ url: AdminURL, completion: @escaping @Sendable (AdminOutcome) -> Void) {
        let loop = client.loop, timeout = requestTimeout
        // Both the answer and the timer run on the loop thread; whichever comes first reports.
        let state = Mutex<(reported: Bool, timer: TimerID?)>((false, nil))
        let report: @Sendable (AdminOutcome) -> Void = { outcome in
            let (first, timer) = state.withLock { state in
                defer { state.reported = true }
                return (!state.reported, state.timer)
            }
            guard first else { return }
            if let timer { loop.cancel(timer) }
            completion(outcome)
        }
        var request = url.request
        request.method = method
        let status = Mutex<Int?>(nil)
        let cancellation = client.execute(request, handler: HTTPResponseHandler(
            head: { head in status.withLock { $0 = head.status } },
            body: { _ in },
            complete: { result in
                switch result {
                case .success:
                    report(.answered(status: status.withLock { $0 } ?? 0))
                case .failure(let error as SystemError) where error.code == ECONNREFUSED:
                    report(.refused)
                case .failure(let error):
                    report(.failed("\(error)"))
                }
            }))
        loop.execute {
            guard !state.withLock({ $0.reported }) else { return }
            let timer = loop.schedule(after: timeout) {
                report(.timedOut)
                cancellation.cancel()
            }
            state.withLock { $0.timer = timer }
        }
    }
}

/// An admin URL checked once, when the command line is read.
public struct AdminURL: Sendable, CustomStringConvertible {
    public let description: String
    let request: HTTPClientRequest

    public init(_ text: String) throws(HTTPClientError) {
        request = try HTTPClientRequest(url: text)
        description = text
    }
}
