import Dispatch
import Glibc
import Kubernetes
import Synchronization
import Telemetry
import Webhook

/// `tandem webhook`: parses options, builds the server with a logger and metrics made here, and
/// serves until SIGTERM or SIGINT, then drains.
struct WebhookCommand {
    static let version = "0.1.0"

    let specs: [OptionSpec] = [
        .value("--listen", name: "ADDR:PORT", help: "Address to serve HTTPS on (default 0.0.0.0:9443)."),
        .value("--tls-cert", name: "FILE", help: "Serving certificate (PEM, chain allowed); reloaded when the file changes."),
        .value("--tls-key", name: "FILE", help: "Its private key (PEM)."),
        .value("--config", name: "FILE", help: "Injection config (the chart's proxy:/injection: values); reloaded when it changes."),
        .value("--kube-version", name: "VERSION", help: "Kubernetes version for lifecycle auto (default: asked from the API server in a cluster)."),
        .value("--reload-interval", name: "SECONDS", help: "How often the config and certificate files are checked (default 2)."),
        .value("--log-level", name: "LEVEL", help: "debug, info, warn or error (default info)."),
    ]

    var help: String {
        helpText(usage: "tandem webhook --tls-cert FILE --tls-key FILE [options]",
                 summary: "Serves the mutating admission webhook: POST /inject (AdmissionReview v1), GET /healthz, /readyz, /metrics.",
                 specs: specs)
    }

    func run(_ arguments: [String]) -> Int32 {
        let options: WebhookOptions
        let level: Logger.Level
        do throws(UsageError) {
            let parsed = try ParsedArguments.parse(arguments, specs: specs)
            if let extra = parsed.positionals.first { throw UsageError(message: "unexpected argument \"\(extra)\"") }
            (options, level) = try Self.options(parsed)
        } catch {
            Console.error("tandem webhook: \(error.message)\nRun 'tandem webhook --help' for usage.\n")
            return 64
        }
        let logger = Logger(level: level).with(["component": "webhook"])
        let server: WebhookServer
        do {
            server = try WebhookServer(options: options, logger: logger, metrics: WebhookMetrics(version: Self.version))
        } catch {
            logger.error("cannot start", ["error": .string("\(error)")])
            return 1
        }
        return serveUntilSignalled(server, logger: logger)
    }

    static func options(_ parsed: ParsedArguments) throws(UsageError) -> (WebhookOptions, Logger.Level) {
        guard let cert = parsed.last("--tls-cert"), let key = parsed.last("--tls-key") else {
            throw UsageError(message: "--tls-cert and --tls-key are required")
        }
        var options = WebhookOptions(certificateFile: cert, keyFile: key, configPath: parsed.last("--config"))
        if let listen = parsed.last("--listen") {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                  (0...65535).contains(port) else {
                throw UsageError(message: "--listen \"\(listen)\" is not ADDR:PORT")
            }
            let host = String(listen[..<colon])
            options.host = host.isEmpty ? "0.0.0.0" : host.trimmingCharacters(in: "[]")
            options.port = port
        }
        if let text = parsed.last("--kube-version") {
            guard let version = KubernetesVersion(text) else {
                throw UsageError(message: "--kube-version \"\(text)\" is not a Kubernetes version (like 1.29 or v1.30.2)")
            }
            options.kubeVersion = version
        }
        if let text = parsed.last("--reload-interval") {
            guard let seconds = Double(text), seconds > 0, seconds <= 300 else {
                throw UsageError(message: "--reload-interval \"\(text)\" must be a number of seconds between 0 and 300")
            }
            options.reloadInterval = .milliseconds(Int(seconds * 1000))
        }
        var level = Logger.Level.info
        if let text = parsed.last("--log-level") {
            guard let parsedLevel = Logger.Level(name: text) else {
                throw UsageError(message: "--log-level must be one of debug, info, warn, error, not \"\(text)\"")
            }
            level = parsedLevel
        }
        return (options, level)
    }
}

/// Runs `server` on a task, cancels it on SIGTERM/SIGINT, and waits. Handlers are `@Sendable`
/// and set up here, outside any actor, so Dispatch may run them on its own threads.
private func serveUntilSignalled(_ server: WebhookServer, logger: Logger) -> Int32 {
    let status = Mutex<Int32>(0)
    let done = DispatchSemaphore(value: 0)
    let task = Task { @Sendable in
        do {
            try await server.run()
        } catch {
            logger.error("webhook failed", ["error": .string("\(error)")])
            status.withLock { $0 = 1 }
        }
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

private extension String {
    func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}
