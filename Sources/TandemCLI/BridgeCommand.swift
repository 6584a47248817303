import Bridge
import Glibc
import Net
import Telemetry

/// `tandem bridge`: serves the discovery registry to legacy hosts (Lyft v1), Envoy (REST xDS),
/// tandem proxies (long-poll) and people (a page).
struct BridgeCommand {
    let specs: [OptionSpec] = [
        .value("--listen", name: "ADDR:PORT", help: "Where to serve the APIs and the page (default 127.0.0.1:8090)."),
        .value("--token-file", name: "FILE", help: "Bearer tokens allowed to register, one per line (a mounted Secret). Without it, registration is refused."),
        .value("--namespace", name: "NS", help: "Namespace whose Services are named without a suffix (default: default)."),
        .value("--ttl", name: "SECONDS", help: "Legacy hosts that stop heartbeating expire after this long (default 600)."),
        .value("--env", name: "NAME", help: "The env reported in Lyft answers (default production)."),
        .value("--workers", name: "N", help: "Event loop threads (default: CPU count)."),
    ]

    var help: String {
        helpText(usage: "tandem bridge [options]", summary: """
        Lets legacy hosts and pods find each other. Legacy hosts register with Lyft discovery's v1 API
        (POST /v1/registration/<service>, with a bearer token) and heartbeat; everyone reads the union:
        GET /v1/registration/<service>, Envoy's REST xDS (POST /v3/discovery:endpoints, :clusters),
        long-polls at GET /v1/watch/<service>?version=N, and a live page at /.
        """, specs: specs)
    }

    func run(_ arguments: [String]) -> Int32 {
        var configuration = BridgeConfiguration(port: 8090)
        var workers = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        do throws(UsageError) {
            let parsed = try ParsedArguments.parse(arguments, specs: specs)
            if let extra = parsed.positionals.first { throw UsageError(message: "unexpected argument \"\(extra)\"") }
            if let listen = parsed.last("--listen") {
                (configuration.host, configuration.port) = try listenAddress(listen)
            }
            if let path = parsed.last("--token-file") {
                configuration.tokens = try Self.tokens(path)
            }
            if let namespace = parsed.last("--namespace") { configuration.defaultNamespace = namespace }
            if let text = parsed.last("--ttl") {
                guard let ttl = Double(text), ttl > 0 else { throw UsageError(message: "--ttl must be a positive number of seconds") }
                configuration.ttl = ttl
            }
            if let env = parsed.last("--env") { configuration.environment = env }
            if let text = parsed.last("--workers") {
                guard let count = Int(text), (1...256).contains(count) else { throw UsageError(message: "--workers must be 1 to 256") }
                workers = count
            }
        } catch {
            Console.error("tandem bridge: \(error.message)\nRun 'tandem bridge --help' for usage.\n")
            return 64
        }
        let logger = Logger(level: .info).with(["component": "bridge"])
        let group: EventLoopGroup
        do {
            group = try EventLoopGroup(threads: workers)
        } catch {
            Console.error("tandem bridge: \(error)\n")
            return 1
        }
        defer { group.shutdown() }
        let metrics = MetricsRegistry()
        metrics.buildInfo(BuildInfo.labels)
        let bridge = BridgeServer(configuration: configuration, group: group, metrics: metrics)
        let tokenCount = configuration.tokens.count
        return serveUntilSignalled(logger: logger) {
            do {
                try await bridge.start()
            } catch {
                logger.error("bridge failed to start", ["error": .string("\(error)")])
                return 1
            }
            logger.info("bridge serving", ["address": .string(bridge.localAddress.map(String.init(describing:)) ?? "?"),
                                           "tokens": .integer(tokenCount)])
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(3600))
            }
            await bridge.shutdown()
            logger.info("bridge stopped")
            return 0
        }
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
