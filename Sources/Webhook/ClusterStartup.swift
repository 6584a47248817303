import Document
import Injection
import Kube
import Kubernetes
import Net
import Synchronization
import Telemetry

/// What the webhook learns from the cluster before it serves: the API server's version (for
/// lifecycle `auto`) and, with `--self-signed`, its certificate files.
public struct ClusterStartup: Sendable {
    /// The process environment (`KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`, `KUBECONFIG`).
    public var environment: [String: String]
    public var serviceAccountDirectory: String
    /// A kubeconfig file to use instead of `KUBECONFIG` or the service account.
    public var kubeconfig: String?
    /// Set for `--self-signed`; an empty namespace means the service account's.
    public var selfSigned: SelfSignedSetup?
    /// Tries at asking the API server, a second apart and doubling: it may still be coming up.
    public var attempts: Int

    public init(environment: [String: String], serviceAccountDirectory: String = KubeConfig.serviceAccountDirectory,
                kubeconfig: String? = nil, selfSigned: SelfSignedSetup? = nil, attempts: Int = 5) {
        self.environment = environment
        self.serviceAccountDirectory = serviceAccountDirectory
        self.kubeconfig = kubeconfig
        self.selfSigned = selfSigned
        self.attempts = attempts
    }

    /// `options` completed from the cluster, and a keeper for what must be checked again while
    /// serving: the version (when it was asked, not given) and, with `--self-signed`, the caBundle.
    /// With no API server to ask (no kubeconfig, no `KUBECONFIG`, no `KUBERNETES_SERVICE_HOST`)
    /// and without `--self-signed` nothing is asked, and an unknown version means native mode.
    public func prepare(_ options: WebhookOptions, logger: Logger) async throws -> (WebhookOptions, ClusterKeeper?) {
        var options = options
        let needsVersion = options.kubeVersion == nil
        let hasServer = kubeconfig != nil || environment["KUBECONFIG"]?.isEmpty == false
            || environment["KUBERNETES_SERVICE_HOST"]?.isEmpty == false
        guard selfSigned != nil || (needsVersion && hasServer) else {
            if needsVersion { logger.warn("Kubernetes version unknown: lifecycle auto means native sidecars") }
            return (options, nil)
        }
        let config = try KubeConfig.resolve(kubeconfig: kubeconfig, environment: environment,
                                            serviceAccountDirectory: serviceAccountDirectory)
        let group = try EventLoopGroup(threads: 1)
        var keeper: ClusterKeeper?
        defer { if keeper == nil { group.shutdown() } }
        let client = try KubeClient(config: config, loop: group.next())
        if needsVersion {
            options.kubeVersion = try await retrying(logger: logger) { () throws(KubeError) in try await client.version() }
            logger.info("asked the API server its version", ["kubernetesVersion": .string(options.kubeVersion!.description)])
        }
        var caBundle: ClusterKeeper.CABundle?
        if var setup = selfSigned {
            if setup.namespace.isEmpty {
                guard let namespace = config.namespace else { throw KubeError("--namespace is needed: \(config.source) names no namespace") }
                setup.namespace = namespace
            }
            let bundle = try await retrying(logger: logger) { try await CertificateBootstrap.run(setup, client: client, logger: logger) }
            options.certificateFile = setup.certificateFile
            options.keyFile = setup.keyFile
            caBundle = setup.webhookConfiguration.map { .init(webhookConfiguration: $0, caBundle: Base64.encode(bundle.caCertificate)) }
        }
        if needsVersion || caBundle != nil {
            keeper = ClusterKeeper(group: group, client: client, followsVersion: needsVersion, caBundle: caBundle, logger: logger)
        }
        return (options, keeper)
    }

    private func retrying<T>(logger: Logger, _ body: () async throws -> T) async throws -> T {
        var delay = Duration.seconds(1)
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await body()
            } catch {
                guard attempt < attempts else { throw error }
                logger.warn("API server call failed; retrying", ["error": .string("\(error)"), "attempt": .integer(attempt)])
                try await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }
}

/// What the webhook checks in the cluster while it serves. Owns the client's event loop.
///
/// - The version, when it was asked rather than given: a control plane upgraded from 1.28 to
///   1.29 should get native sidecars for the pods created after it, without a webhook restart.
/// - With `--self-signed`, the CA in the webhook configuration: something may reset it (a
///   re-install that sends the object without `caBundle`), and without it the apiserver cannot
///   call the webhook, so with `failurePolicy: Fail` every meshed pod would wait.
public final class ClusterKeeper: Sendable {
    public struct CABundle: Sendable {
        public var webhookConfiguration: String
        public var caBundle: String
    }

    private let group: EventLoopGroup
    private let client: KubeClient
    private let followsVersion: Bool
    private let caBundle: CABundle?
    private let logger: Logger

    init(group: EventLoopGroup, client: KubeClient, followsVersion: Bool, caBundle: CABundle?, logger: Logger) {
        self.group = group
        self.client = client
        self.followsVersion = followsVersion
        self.caBundle = caBundle
        self.logger = logger
    }

    /// Asks the version once, if this keeper follows it; true when it changed. A failed ask keeps
    /// the version known so far.
    @discardableResult
    public func checkVersion(_ version: APIServerVersion) async -> Bool {
        guard followsVersion else { return false }
        do {
            let asked = try await client.version()
            let (changed, before) = version.update(asked)
            guard changed else { return false }
            logger.info("the API server's version changed", [
                "from": before.map { .string($0.description) } ?? .null, "to": .string(asked.description),
            ])
            return true
        } catch {
            logger.warn("cannot ask the API server its version; keeping the one known", ["error": .string("\(error)")])
            return false
        }
    }

    /// Checks the caBundle once, if this keeper keeps one; true when it had to be restored.
    @discardableResult
    public func checkCABundle() async -> Bool {
        guard let caBundle else { return false }
        do {
            let restored = try await client.setCABundle(mutatingWebhookConfiguration: caBundle.webhookConfiguration,
                                                        caBundle: caBundle.caBundle)
            if restored {
                logger.warn("the webhook configuration had lost the CA; restored",
                            ["mutatingWebhookConfiguration": .string(caBundle.webhookConfiguration)])
            }
            return restored
        } catch {
            logger.warn("cannot check the webhook configuration's CA", ["error": .string("\(error)")])
            return false
        }
    }

    /// Checks both every `interval` until cancelled, then releases the client.
    public func keep(every interval: Duration, version: APIServerVersion) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { break }
            await checkVersion(version)
            await checkCABundle()
        }
        group.shutdown()
    }
}

/// The API server's version as the webhook knows it now: read by every review (lifecycle
/// `auto`), updated by the `ClusterKeeper`.
public final class APIServerVersion: Sendable {
    private let version: Mutex<KubernetesVersion?>

    public init(_ version: KubernetesVersion?) {
        self.version = Mutex(version)
    }

    public var current: KubernetesVersion? { version.withLock { $0 } }

    /// Sets `new`, and says whether that changed it and what it was before.
    func update(_ new: KubernetesVersion) -> (changed: Bool, before: KubernetesVersion?) {
        version.withLock { version in
            defer { version = new }
            return (version != new, version)
        }
    }
}
