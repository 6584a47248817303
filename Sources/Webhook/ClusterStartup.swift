import Document
import Injection
import Kube
import Kubernetes
import Net
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

    /// `options` completed from the cluster, and with `--self-signed` a keeper for the caBundle.
    /// With no API server to ask (no kubeconfig, no `KUBECONFIG`, no `KUBERNETES_SERVICE_HOST`)
    /// and without `--self-signed` nothing is asked, and an unknown version means native mode.
    public func prepare(_ options: WebhookOptions, logger: Logger) async throws -> (WebhookOptions, CABundleKeeper?) {
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
        var keeper: CABundleKeeper?
        defer { if keeper == nil { group.shutdown() } }
        let client = try KubeClient(config: config, loop: group.next())
        if needsVersion {
            options.kubeVersion = try await retrying(logger: logger) { () throws(KubeError) in try await client.version() }
            logger.info("asked the API server its version", ["kubernetesVersion": .string(options.kubeVersion!.description)])
        }
        if var setup = selfSigned {
            if setup.namespace.isEmpty {
                guard let namespace = config.namespace else { throw KubeError("--namespace is needed: \(config.source) names no namespace") }
                setup.namespace = namespace
            }
            let bundle = try await retrying(logger: logger) { try await CertificateBootstrap.run(setup, client: client, logger: logger) }
            options.certificateFile = setup.certificateFile
            options.keyFile = setup.keyFile
            if let name = setup.webhookConfiguration {
                keeper = CABundleKeeper(group: group, client: client, webhookConfiguration: name,
                                        caBundle: Base64.encode(bundle.caCertificate), logger: logger)
            }
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

/// Puts the CA back into the webhook configuration if something resets it (a re-install that
/// sends the object without `caBundle`): without it the apiserver cannot call the webhook, and
/// with `failurePolicy: Fail` every meshed pod would wait. Owns the client's event loop.
public final class CABundleKeeper: Sendable {
    private let group: EventLoopGroup
    private let client: KubeClient
    private let webhookConfiguration: String
    private let caBundle: String
    private let logger: Logger

    init(group: EventLoopGroup, client: KubeClient, webhookConfiguration: String, caBundle: String, logger: Logger) {
        self.group = group
        self.client = client
        self.webhookConfiguration = webhookConfiguration
        self.caBundle = caBundle
        self.logger = logger
    }

    /// Checks once; true when the bundle had to be restored.
    @discardableResult
    public func check() async -> Bool {
        do {
            let restored = try await client.setCABundle(mutatingWebhookConfiguration: webhookConfiguration, caBundle: caBundle)
            if restored {
                logger.warn("the webhook configuration had lost the CA; restored",
                            ["mutatingWebhookConfiguration": .string(webhookConfiguration)])
            }
            return restored
        } catch {
            logger.warn("cannot check the webhook configuration's CA", ["error": .string("\(error)")])
            return false
        }
    }

    /// Checks every `interval` until cancelled, then releases the client.
    public func keep(every interval: Duration) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { break }
            await check()
        }
        group.shutdown()
    }
}
