import Bridge
import Glibc
import Kube
import Net
import Telemetry

/// `tandem bridge`: serves the discovery registry to legacy hosts (Lyft v1), Envoy (REST xDS),
/// tandem proxies (long-poll) and people (a page).
struct BridgeCommand {
    let specs: [OptionSpec] = [
        .value("--listen", name: "ADDR:PORT", help: "Where to serve the APIs and the page (default 127.0.0.1:8090)."),
        .value("--token-file", name: "FILE", help: "Bearer tokens allowed to register, one per line (a mounted Secret). Without it, registration is refused."),
        .value("--kubeconfig", name: "FILE", help: "Kubernetes API access (default: $KUBECONFIG, else the pod's service account; with neither, legacy hosts only)."),
        .value("--namespace", name: "NS", help: "A namespace to watch and write to; repeat for more (default: all). Services of the first are named without a suffix (default: default)."),
        .value("--advertise", name: "HOST:PORT", help: "How other replicas reach this one; its name in the Lease (default: $POD_IP or the hostname, with the --listen port)."),
        .value("--lease-namespace", name: "NS", help: "Where the Lease that picks the one writer lives (default: the service account's namespace, else the first --namespace)."),
        .flag("--no-write-back", help: "Do not mirror legacy hosts into Kubernetes as Services and EndpointSlices."),
        .value("--ttl", name: "SECONDS", help: "Legacy hosts that stop heartbeating expire after this long (default 600)."),
        .value("--env", name: "NAME", help: "The env reported in Lyft answers (default production)."),
        .value("--workers", name: "N", help: "Event loop threads (default: the CPUs this process may use: affinity, capped by its cgroup CPU limit)."),
    ]

    var help: String {
        helpText(usage: "tandem bridge [options]", summary: """
        Lets legacy hosts and pods find each other. Legacy hosts register with Lyft discovery's v1 API
        (POST /v1/registration/<service>, with a bearer token) and heartbeat; everyone reads the union:
        GET /v1/registration/<service>, Envoy's REST xDS (POST /v3/discovery:endpoints, :clusters),
        long-polls at GET /v1/watch/<service>?version=N, and a live page at /. With a Kubernetes API it
        watches EndpointSlices, and one replica (holding a Lease) mirrors legacy hosts into Kubernetes
        as selector-less Services with EndpointSlices; the others forward registrations to it.
        """, specs: specs)
    }

    func run(_ arguments: [String]) -> Int32 {
        var configuration = BridgeConfiguration(port: 8090)
        var workers = availableProcessors()
        let kubernetes: (config: KubeConfig, options: KubernetesSyncOptions)?
        do throws(UsageError) {
            let parsed = try ParsedArguments.parse(arguments, specs: specs)
            if let extra = parsed.positionals.first { throw UsageError(message: "unexpected argument \"\(extra)\"") }
            if let listen = parsed.last("--listen") {
                (configuration.host, configuration.port) = try listenAddress(listen)
            }
            if let path = parsed.last("--token-file") {
                configuration.tokens = try Self.tokens(path)
            }
            let namespaces = parsed.all("--namespace")
            if let home = namespaces.first { configuration.defaultNamespace = home }
            if let text = parsed.last("--ttl") {
                guard let ttl = Double(text), ttl > 0 else { throw UsageError(message: "--ttl must be a positive number of seconds") }
                configuration.ttl = ttl
            }
            if let env = parsed.last("--env") { configuration.environment = env }
            if let text = parsed.last("--workers") {
                guard let count = Int(text), (1...256).contains(count) else { throw UsageError(message: "--workers must be 1 to 256") }
                workers = count
            }
            kubernetes = try Self.kubernetes(parsed, namespaces: namespaces, port: configuration.port)
        } catch {
            Console.error("tandem bridge: \(error.message)\nRun 'tandem bridge --help' for usage.\n")
            return 64
        }
        let logger = Logger(level: .info).with(["component": "bridge"])
        let signals: SignalChannel
        let group: EventLoopGroup
        do {
            signals = try startServing()
            group = try EventLoopGroup(threads: workers)
        } catch {
            Console.error("tandem bridge: \(error)\n")
            return 1
        }
        defer { group.shutdown() }
        let metrics = MetricsRegistry()
        metrics.buildInfo(BuildInfo.labels)
        let bridge = BridgeServer(configuration: configuration, group: group, metrics: metrics)
        var sync: KubernetesSync?
        if let kubernetes {
            do {
                let client = try KubeClient(config: kubernetes.config, loop: group.next())
                sync = KubernetesSync(client: client, server: bridge, options: kubernetes.options, logger: logger, metrics: metrics)
            } catch {
                Console.error("tandem bridge: \(error)\n")
                return 1
            }
        }
        let tokenCount = configuration.tokens.count
        return serveUntilSignalled(signals, logger: logger) { [sync] in
            do {
                try await bridge.start()
            } catch {
                logger.error("bridge failed to start", ["error": .string("\(error)")])
                return 1
            }
            logger.info("bridge serving", ["address": .string(bridge.localAddress.map(String.init(describing:)) ?? "?"),
                                           "tokens": .integer(tokenCount),
                                           "kubernetes": .string(kubernetes?.config.source ?? "none")])
            if let sync {
                await sync.run()
            } else {
                logger.warn("no Kubernetes API configured (--kubeconfig, $KUBECONFIG or a pod's service account): serving legacy hosts only")
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            }
            await bridge.shutdown()
            logger.info("bridge stopped")
            return 0
        }
    }

    /// The Kubernetes side, or nil when nothing says where an API server is (no --kubeconfig,
    /// no $KUBECONFIG, not in a pod). A kubeconfig that is named but unusable is an error.
    static func kubernetes(_ parsed: ParsedArguments, namespaces: [String],
                           port: Int) throws(UsageError) -> (config: KubeConfig, options: KubernetesSyncOptions)? {
        let environment = processEnvironment(["KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_IP", "HOSTNAME"])
        let kubeconfig = parsed.last("--kubeconfig")
        guard kubeconfig != nil || environment["KUBECONFIG"]?.isEmpty == false || environment["KUBERNETES_SERVICE_HOST"]?.isEmpty == false else {
            for option in ["--advertise", "--lease-namespace"] where parsed.last(option) != nil {
                throw UsageError(message: "\(option) needs a Kubernetes API (--kubeconfig, $KUBECONFIG or a pod's service account)")
            }
            return nil
        }
        let config: KubeConfig
        do {
            config = try KubeConfig.resolve(kubeconfig: kubeconfig, environment: environment)
        } catch {
            throw UsageError(message: error.description)
        }
        let identity: String
        if let advertise = parsed.last("--advertise") {
            let (host, advertisedPort) = try listenAddress(advertise)
            guard advertisedPort != 0 else { throw UsageError(message: "--advertise needs a port other than 0") }
            identity = host.contains(":") ? "[\(host)]:\(advertisedPort)" : "\(host):\(advertisedPort)"
        } else {
            var name = [UInt8](repeating: 0, count: 256)
            gethostname(&name, name.count)
            let host = environment["POD_IP"] ?? String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
            identity = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
        var options = KubernetesSyncOptions(namespaces: namespaces, identity: identity, writeBack: !parsed.flag("--no-write-back"))
        options.leaseNamespace = parsed.last("--lease-namespace") ?? config.namespace ?? options.homeNamespace
        return (config, options)
    }

    static func tokens(_ path: String) throws(UsageError) -> Set<String> {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(path)
        } catch {
            throw UsageError(message: "--token-file: \(error)")
        }
        let tokens = Set(String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimming(" \t\r") }.filter { !$0.isEmpty && !$0.hasPrefix("#") })
        guard !tokens.isEmpty else { throw UsageError(message: "--token-file \(path) holds no tokens") }
        return tokens
    }
}
