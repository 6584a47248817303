import Glibc
import Net

/// `tandem await`: block until the proxy is ready (the legacy proxy container's postStart hook,
/// which holds the app containers' start).
public enum ProxyAwait {
    public enum Outcome: Equatable, Sendable {
        case reached(polls: Int)
        case timedOut(lastAnswer: String)
    }

    /// Polls `url` with GET until it answers 200. `timeout` nil waits for as long as it takes.
    /// Every millisecond between the proxy turning ready and the probe seeing it delays the app's
    /// start, so probes go every 5 ms over one kept-alive connection (a trivial load on the
    /// proxy's admin port, and only while the pod starts).
    public static func ready(url: AdminURL, timeout: Duration?, probeInterval: Duration = .milliseconds(5),
                             requestTimeout: Duration = .seconds(1), log: LogSink) throws(SystemError) -> Outcome {
        let deadline = timeout.map { NanoTime.now() + $0 }
        let group = try EventLoopGroup(threads: 1)
        let admin = ProxyAdmin(loop: group.loops[0], requestTimeout: requestTimeout)
        // Net's pooled connections hold their client unowned: stop the loop before the client goes.
        defer { withExtendedLifetime(admin) { group.shutdown() } }
        let answers = try Mailbox<AdminOutcome>()
        var polls = 0
        var lastAnswer: String?
        while true {
            admin.request(.get, url) { answers.post($0) }
            // A probe still in flight at the deadline is abandoned, so the deadline holds.
            guard let answer = answers.next(until: deadline) else { break }
            polls += 1
            if answer == .answered(status: 200) { return .reached(polls: polls) }
            if answer.description != lastAnswer {
                lastAnswer = answer.description
                log(LogRecord(.info, "still waiting", [("url", url.description), ("answer", answer.description)]))
            }
            let nextProbe = NanoTime.now() + probeInterval
            Poll.pause(until: deadline.map { min($0, nextProbe) } ?? nextProbe)
            if let deadline, deadline <= NanoTime.now() { break }
        }
        return .timedOut(lastAnswer: lastAnswer ?? "none")
    }
}
