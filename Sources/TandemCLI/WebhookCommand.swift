import Dispatch
import Glibc
import Kube
import Kubernetes
import Net
import Synchronization
import Telemetry
import Webhook

/// `tandem webhook`: parses options, builds the server with a logger and metrics made here, and
/// serves until SIGTERM or SIGINT, then drains.
struct WebhookCommand {
    let specs: [OptionSpec] = [
        .value("--listen", name: "ADDR:PORT", help: "Address to serve HTTPS on (default 0.0.0.0:9443)."),
        .value("--tls-cert", name: "FILE", help: "Serving certificate (PEM, chain allowed); reloaded when the file changes."),
        .value("--tls-key", name: "FILE", help: "Its private key (PEM)."),
        .value("--config", name: "FILE", help: "Injection config (the chart's proxy:/injection: values); reloaded when it changes."),
        .value("--kube-version", name: "VERSION", help: "Kubernetes version for lifecycle auto (default: asked from the API server in a cluster)."),
        .value("--reload-interval", name: "SECONDS", help: "How often the config and certificate files are checked (default 2)."),
        .value("--shutdown-delay", name: "SECONDS", help: "After SIGTERM, fail /readyz but keep serving this long before draining (default 5)."),
        .value("--log-level", name: "LEVEL", help: "debug, info, warn or error (default info)."),
        .flag("--self-signed", help: "Instead of --tls-cert/--tls-key: make a CA and certificate, share them through a Secret, patch the caBundle."),
        .value("--service", name: "NAME", help: "With --self-signed: the webhook's Service, named in the certificate (default tandem-webhook)."),
        .value("--namespace", name: "NAME", help: "With --self-signed: its namespace (default: the service account's)."),
        .value("--secret", name: "NAME", help: "With --self-signed: the Secret holding the certificates (default tandem-webhook-tls)."),
        .value("--webhook-config", name: "NAME", help: "With --self-signed: the MutatingWebhookConfiguration to patch (default tandem; \"\" for none)."),
        .value("--cert-dir", name: "DIR", help: "With --self-signed: where the certificate files are written (default /var/run/tandem/certs)."),
        .value("--kubeconfig", name: "FILE", help: "API server access for the version and --self-signed (default: $KUBECONFIG, else the pod's service account)."),
        .value("--service-account-dir", name: "DIR", help: "The mounted service account (default \(KubeConfig.serviceAccountDirectory))."),
    ]

    var help: String {
        helpText(usage: "tandem webhook (--tls-cert FILE --tls-key FILE | --self-signed) [options]",
                 summary: "Serves the mutating admission webhook: POST /inject (AdmissionReview v1), GET /healthz, /readyz, /metrics.",
                 specs: specs)
    }

    func run(_ arguments: [String]) -> Int32 {
        let options: WebhookOptions
        let level: Logger.Level
        let cluster: ClusterStartup
        do throws(UsageError) {
            let parsed = try ParsedArguments.parse(arguments, specs: specs)
            if let extra = parsed.positionals.first { throw UsageError(message: "unexpected argument \"\(extra)\"") }
            (options, level) = try Self.options(parsed)
            cluster = Self.cluster(parsed)
        } catch {
            Console.error("tandem webhook: \(error.message)\nRun 'tandem webhook --help' for usage.\n")
            return 64
        }
        let logger = Logger(level: level).with(["component": "webhook"])
        let signals: SignalChannel
        do {
            signals = try startServing()
        } catch {
            Console.error("tandem webhook: \(error)\n")
            return 1
        }
        return serveUntilSignalled(signals, logger: logger) {
            let server: WebhookServer
            let keeper: ClusterKeeper?
            do {
                let prepared: WebhookOptions
                (prepared, keeper) = try await cluster.prepare(options, logger: logger)
                server = try WebhookServer(options: prepared, logger: logger, metrics: WebhookMetrics(build: BuildInfo.labels))
            } catch {
                logger.error("cannot start", ["error": .string("\(error)")])
                return 1
            }
            return await withTaskGroup(of: Int32.self) { tasks in
                if let keeper { tasks.addTask { await keeper.keep(every: .seconds(60), version: server.apiServerVersion); return 0 } }
                tasks.addTask {
                    do {
                        try await server.run()
                        return 0
                    } catch {
                        logger.error("webhook failed", ["error": .string("\(error)")])
                        return 1
                    }
                }
                // The server ends first (signal or failure); the keeper goes with it.
                var status: Int32 = 0
                for await code in tasks {
                    status = max(status, code)
                    tasks.cancelAll()
                }
                return status
            }
        }
    }

    static func cluster(_ parsed: ParsedArguments) -> ClusterStartup {
        var cluster = ClusterStartup(environment: processEnvironment(["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBECONFIG"]),
                                     kubeconfig: parsed.last("--kubeconfig"))
        if let directory = parsed.last("--service-account-dir") { cluster.serviceAccountDirectory = directory }
        if parsed.flag("--self-signed") {
            let webhookConfiguration = parsed.last("--webhook-config") ?? "tandem"
            cluster.selfSigned = SelfSignedSetup(
                namespace: parsed.last("--namespace") ?? "", service: parsed.last("--service") ?? "tandem-webhook",
                secretName: parsed.last("--secret") ?? "tandem-webhook-tls",
                webhookConfiguration: webhookConfiguration.isEmpty ? nil : webhookConfiguration,
                directory: parsed.last("--cert-dir") ?? "/var/run/tandem/certs")
        }
        return cluster
    }

    static func options(_ parsed: ParsedArguments) throws(UsageError) -> (WebhookOptions, Logger.Level) {
        let cert = parsed.last("--tls-cert"), key = parsed.last("--tls-key")
        if parsed.flag("--self-signed") {
            guard cert == nil, key == nil else { throw UsageError(message: "--self-signed makes its own certificate: drop --tls-cert and --tls-key") }
        } else {
            guard cert != nil, key != nil else { throw UsageError(message: "--tls-cert and --tls-key are required (or --self-signed)") }
            for option in ["--service", "--namespace", "--secret", "--webhook-config", "--cert-dir"] where parsed.last(option) != nil {
                throw UsageError(message: "\(option) goes with --self-signed")
            }
        }
        var options = WebhookOptions(certificateFile: cert ?? "", keyFile: key ?? "", configPath: parsed.last("--config"))
        if let listen = parsed.last("--listen") {
            (options.host, options.port) = try listenAddress(listen)
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
        if let text = parsed.last("--shutdown-delay") {
            guard let seconds = Double(text), seconds >= 0, seconds <= 300 else {
                throw UsageError(message: "--shutdown-delay \"\(text)\" must be a number of seconds between 0 and 300")
            }
            options.shutdownDelay = .milliseconds(Int(seconds * 1000))
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
