import Lifecycle
import Net

/// `tandem await`: the legacy-mode hooks of the proxy container. As postStart it blocks until the
/// proxy is ready, so the kubelet starts the app containers only then; as preStop (`--app-exit`)
/// it blocks until the app side has told the proxy to quit, so the proxy outlives the app.
enum AwaitCommand {
    static let specs: [OptionSpec] = [
        .value("--ready-url", name: "URL", help: "Wait until this answers 200 (default http://127.0.0.1:15000/ready)."),
        .flag("--app-exit", help: "Instead, wait until the proxy admin at --admin-url stops accepting connections."),
        .value("--admin-url", name: "URL", help: "The proxy admin for --app-exit (default http://127.0.0.1:15000)."),
        .value("--timeout", name: "SECONDS", help: "Give up after this long (default 120; 0 waits forever)."),
    ]

    static let help = helpText(
        usage: "tandem await [--ready-url URL] [--timeout SECONDS]\n       tandem await --app-exit [--admin-url URL] [--timeout SECONDS]",
        summary: """
        Blocks until the proxy is ready (exit 0; 69 if the timeout passes first), polling every 10 ms. With
        --app-exit, blocks until the proxy admin refuses connections, which happens once `tandem supervise`
        has told the proxy to quit after the app exited, or until the timeout; it exits 0 either way, so a
        preStop hook never holds the pod beyond its bound.
        """,
        specs: specs)

    static func run(_ arguments: [String]) -> Int32 {
        let appExit: Bool
        let url: AdminURL
        let timeout: Duration?
        do throws(UsageError) {
            let parsed = try ParsedArguments.parse(arguments, specs: specs + [helpOption])
            if parsed.flag("--help") {
                Console.out(help)
                return 0
            }
            if let extra = parsed.positionals.first { throw UsageError(message: "unexpected argument \"\(extra)\"") }
            appExit = parsed.flag("--app-exit")
            if appExit, parsed.last("--ready-url") != nil { throw UsageError(message: "--ready-url does not go with --app-exit (use --admin-url)") }
            if !appExit, parsed.last("--admin-url") != nil { throw UsageError(message: "--admin-url needs --app-exit") }
            let key = appExit ? "--admin-url" : "--ready-url"
            url = try adminURL(parsed, key, default: appExit ? "http://127.0.0.1:15000" : "http://127.0.0.1:15000/ready")!
            timeout = try seconds(parsed, "--timeout", default: .seconds(120))
        } catch {
            Console.error("tandem await: \(error.message)\nRun 'tandem await --help' for usage.\n")
            return 64
        }
        let log = logSink("await")
        let started = NanoTime.now()
        do {
            if appExit {
                switch try ProxyAwait.proxyExit(url: url, timeout: timeout, log: log) {
                case .reached:
                    log(LogRecord(.info, "proxy has stopped; the app side is finished", [("waited_ms", waitedMilliseconds(since: started))]))
                case .timedOut(let lastAnswer):
                    log(LogRecord(.warning, "proxy still running at the deadline; letting the pod stop", [("last_answer", lastAnswer)]))
                }
                return 0
            }
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
            return appExit ? 0 : 1
        }
    }

    private static func waitedMilliseconds(since start: NanoTime) -> String {
        "\((NanoTime.now().nanoseconds - start.nanoseconds) / 1_000_000)"
    }
}
