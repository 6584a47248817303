import Glibc
import Net

/// `tandem await`: block until the proxy is ready (a postStart hook), or until the proxy has
/// stopped accepting connections because the app side told it to quit (a preStop hook).
public enum ProxyAwait {
    public enum Outcome: Equatable, Sendable {
        case reached(polls: Int)
        case timedOut(lastAnswer: String)
    }

    /// Polls `url` with GET until it answers 200. `timeout` nil waits for as long as it takes.
    public static func ready(url: AdminURL, timeout: Duration?, probeInterval: Duration = .milliseconds(10),
                             requestTimeout: Duration = .seconds(1), log: LogSink) throws(SystemError) -> Outcome {
        try pollUntil(url: url, timeout: timeout, interval: probeInterval, requestTimeout: requestTimeout, log: log) {
            $0 == .answered(status: 200)
        }
    }

    /// Polls the admin `url` until it refuses connections: the proxy has exited. Any answer, even
    /// an error status or a timeout, means it is still there.
    public static func proxyExit(url: AdminURL, timeout: Duration?, probeInterval: Duration = .milliseconds(20),
                                 requestTimeout: Duration = .seconds(1), log: LogSink) throws(SystemError) -> Outcome {
        try pollUntil(url: url, timeout: timeout, interval: probeInterval, requestTimeout: requestTimeout, log: log) {
            $0 == .refused
        }
    }

    private static func pollUntil(url: AdminURL, timeout: Duration?, interval: Duration, requestTimeout: Duration,
                                  log: LogSink, done: (AdminOutcome) -> Bool) throws(SystemError) -> Outcome {
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
            if done(answer) { return .reached(polls: polls) }
            if answer.description != lastAnswer {
                lastAnswer = answer.description
                log(LogRecord(.info, "still waiting", [("url", url.description), ("answer", answer.description)]))
            }
            let nextProbe = NanoTime.now() + interval
            Poll.pause(until: deadline.map { min($0, nextProbe) } ?? nextProbe)
            if let deadline, deadline <= NanoTime.now() { break }
        }
        return .timedOut(lastAnswer: lastAnswer ?? "none")
    }
}
