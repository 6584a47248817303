import Glibc
import Proxy
import Telemetry

/// `tandem proxy`: the sidecar proxy. A config file, the quick one-route form, or (with
/// neither) the injected-pod defaults from the environment.
struct ProxyCommand {
    let specs: [OptionSpec] = [
        .value("--config", name: "FILE", help: "YAML or JSON proxy configuration; edits to the file are applied in place."),
        .value("--listen", name: "ADDR:PORT", help: "Quick form: listen here (with --to)."),
        .value("--to", name: "ADDR:PORT[,…]", help: "Quick form: forward to these endpoints, round robin."),
        .value("--bridge", name: "URL", help: "Quick form, instead of --to: the discovery bridge (http://HOST:PORT) to follow…"),
        .value("--service", name: "NAME", help: "…for the endpoints of this service."),
        .flag("--tcp", help: "Quick form: forward TCP instead of HTTP/1.1."),
        .value("--admin", name: "ADDR:PORT", help: "Admin endpoints, loopback only (default 127.0.0.1:15000, or TANDEM_ADMIN_PORT)."),
        .value("--workers", name: "N", help: "Worker threads (default 1)."),
        .value("--drain-seconds", name: "N", help: "Longest drain after the delay (default 5, or TANDEM_DRAIN_SECONDS)."),
        .value("--drain-delay", name: "N", help: "After SIGTERM, keep accepting for N seconds while endpoint removal propagates (default 0, or TANDEM_DRAIN_DELAY_SECONDS)."),
    ]

    var help: String {
        helpText(usage: "tandem proxy [--config FILE | --listen ADDR:PORT (--to ADDR:PORT[,…] | --bridge URL --service NAME) [--tcp]] [options]",
                 summary: """
                 Runs the sidecar proxy. With neither --config nor --listen it takes the injected pod's environment:
                 TANDEM_INBOUND_PORTS (listener i on 0.0.0.0:\(ProxySettings.inboundBasePort)+i to 127.0.0.1:port i),
                 TANDEM_ADMIN_PORT, TANDEM_HEALTH_PORT (read-only /ready on all interfaces), TANDEM_LOG_LEVEL,
                 TANDEM_DRAIN_SECONDS, TANDEM_DRAIN_DELAY_SECONDS and TANDEM_LIFECYCLE.
                 SIGTERM fails readiness at once and inbound responses say Connection: close; everything is still
                 accepted for the drain delay, and with TANDEM_LIFECYCLE=legacy (the app got SIGTERM too) until
                 POST /quitquitquit says the app has exited. Then listeners stop accepting, open connections finish,
                 and the proxy exits, at the latest drain delay + drain seconds after SIGTERM. POST /quitquitquit
                 without SIGTERM (a Job's app has exited) drains at once.
                 With --bridge and --service (or `bridge:` and a cluster's `service:` in the file) endpoints come from
                 `tandem bridge` and follow it in place; while it cannot be reached the last ones keep serving.
                 """, specs: specs)
    }

    func run(_ arguments: [String]) -> Int32 {
        let settings: ProxySettings
        do {
            settings = try self.settings(arguments, environment: Self.environment())
        } catch let error as UsageError {
            Console.error("tandem proxy: \(error.message)\nRun 'tandem proxy --help' for usage.\n")
            return 64
        } catch {
            Console.error("tandem proxy: \(error)\n")
            return 1
        }
        let service: ProxyService
        let metrics = MetricsRegistry()
        metrics.buildInfo(BuildInfo.labels)
        do {
            service = try ProxyService(settings: settings, metrics: metrics) { @Sendable line in Console.error(line + "\n") }
        } catch {
            Console.error("tandem proxy: \(error)\n")
            return 64
        }
        return service.run()
    }

    /// What to run, from the command line and the environment; usage errors are `UsageError`.
    func settings(_ arguments: [String], environment: [String: String]) throws -> ProxySettings {
        let parsed = try ParsedArguments.parse(arguments, specs: specs)
        if let extra = parsed.positionals.first { throw UsageError(message: "unexpected argument \"\(extra)\"") }
        var settings = try ProxySettings.fromEnvironment(environment)
        let upstream: ProxySettings.QuickUpstream?
        switch (parsed.last("--to"), parsed.last("--bridge"), parsed.last("--service")) {
        case (nil, nil, nil): upstream = nil
        case (let to?, nil, nil): upstream = .endpoints(to)
        case (nil, let url?, let service?): upstream = .bridge(url: url, service: service)
        case (nil, _, _): throw UsageError(message: "--bridge and --service go together")
        default: throw UsageError(message: "use either --to or --bridge with --service")
        }
        switch (parsed.last("--config"), parsed.last("--listen"), upstream) {
        case (let path?, nil, nil):
            settings.config = try ConfigReader.read(try readFile(path))
            settings.configPath = path
            settings.health = nil
        case (nil, let listen?, let upstream?):
            do { settings.config = try ProxySettings.quick(listen: listen, to: upstream, tcp: parsed.flag("--tcp")) } catch {
                throw UsageError(message: error.description)
            }
            settings.health = nil
        case (nil, nil, nil):
            if settings.config.listeners.isEmpty {
                throw UsageError(message: "nothing to proxy: give --config FILE, --listen with --to, or set TANDEM_INBOUND_PORTS")
            }
        default:
            throw UsageError(message: "use either --config FILE or --listen ADDR:PORT with --to ADDR:PORT[,…] (or --bridge URL --service NAME)")
        }
        if parsed.flag("--tcp") && parsed.last("--listen") == nil { throw UsageError(message: "--tcp belongs to the quick form (--listen, --to)") }
        if let admin = parsed.last("--admin") {
            do { settings.admin = try HostPort(parsing: admin) } catch { throw UsageError(message: "--admin: \(error.message)") }
        }
        if let text = parsed.last("--workers") {
            guard let workers = Int(text), (1...256).contains(workers) else { throw UsageError(message: "--workers must be 1-256, not \"\(text)\"") }
            settings.workers = workers
        }
        if let text = parsed.last("--drain-seconds") {
            guard let seconds = Int(text), (0...3600).contains(seconds) else { throw UsageError(message: "--drain-seconds must be 0-3600, not \"\(text)\"") }
            settings.drainSeconds = seconds
        }
        if let text = parsed.last("--drain-delay") {
            guard let seconds = Int(text), (0...3600).contains(seconds) else { throw UsageError(message: "--drain-delay must be 0-3600, not \"\(text)\"") }
            settings.drainDelaySeconds = seconds
        }
        return settings
    }

    static func environment() -> [String: String] {
        var values: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") { values[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            entry += 1
        }
        return values
    }
}
