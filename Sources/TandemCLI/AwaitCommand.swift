import Lifecycle
import Net

/// `tandem await`: the legacy-mode postStart hook of the proxy container. It blocks until the
/// proxy is ready, so the kubelet starts the app containers only then. (Stopping needs no hook:
/// the proxy itself serves until the app's supervisor says the app has exited.)
enum AwaitCommand {
    static let specs: [OptionSpec] = [
        .value("--ready-url", name: "URL", help: "Wait until this answers 200 (default http://127.0.0.1:15000/ready)."),
        .value("--timeout", name: "SECONDS", help: "Give up after this long (default 120; 0 waits forever)."),
    ]

    static let help = helpText(
        usage: "tandem await [--ready-url URL] [--timeout SECONDS]",
        summary: """
        Blocks until the proxy is ready (exit 0; 69 if the timeout passes first), polling every 10 ms.
        """,
        specs: specs)

    static func run(_ arguments: [String]) -> Int32 {
        let url: AdminURL
        let timeout: Duration?
        do throws(UsageError) {
            let parsed = try ParsedArguments.parse(arguments, specs: specs + [helpOption])
            if parsed.flag("--help") {
                Console.out(help)
                return 0
            }
            if let extra = parsed.positionals.first { throw UsageError(message: "unexpected argument \"\(extra)\"") }
            url = try adminURL(parsed, "--ready-url", default: "http://127.0.0.1:15000/ready")!
            timeout = try seconds(parsed, "--timeout", default: .seconds(120))
        } catch {
            Console.error("tandem await: \(error.message)\nRun 'tandem await --help' for usage.\n")
            return 64
        }
        let log = logSink("await")
        let started = NanoTime.now()
        do {
            switch try ProxyAwait.ready(url: url, timeout: timeout, log: log) {
            case .reached(let polls):
                log(LogRecord(.info, "proxy is ready", [("polls", "\(polls)"), ("waited_ms", waitedMilliseconds(since: started))]))
                return 0
            case .timedOut(let lastAnswer):
                log(LogRecord(.error, "proxy not ready in time", [("url", url.description), ("last_answer", lastAnswer)]))
                return SupervisorExit.proxyUnavailable
            }
        } catch {
            Console.error("tandem await: \(error)\n")
            return 1
        }
    }

    private static func waitedMilliseconds(since start: NanoTime) -> String {
        "\((NanoTime.now().nanoseconds - start.nanoseconds) / 1_000_000)"
    }
}
