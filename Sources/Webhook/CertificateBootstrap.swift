import Document
import Glibc
import Injection
import Kube
import Telemetry

/// Where `--self-signed` keeps its certificates and whom it tells about the CA.
public struct SelfSignedSetup: Sendable {
    public var namespace: String
    /// The Service the apiserver calls; its DNS names go in the certificate.
    public var service: String
    /// The Secret shared by all replicas.
    public var secretName: String
    /// The MutatingWebhookConfiguration whose `caBundle` is set; nil leaves it alone
    /// (cert-manager's CA injector, or a bundle set at install).
    public var webhookConfiguration: String?
    /// Where `tls.crt`, `tls.key` and `ca.crt` are written for the server to load.
    public var directory: String

    public init(namespace: String, service: String, secretName: String, webhookConfiguration: String?, directory: String) {
        self.namespace = namespace
        self.service = service
        self.secretName = secretName
        self.webhookConfiguration = webhookConfiguration
        self.directory = directory
    }

    public var certificateFile: String { directory + "/tls.crt" }
    public var keyFile: String { directory + "/tls.key" }
    public var caFile: String { directory + "/ca.crt" }
}

/// `--self-signed` at start: every replica ends up serving the one bundle stored in the Secret.
///
/// The first replica to find no Secret generates a bundle and creates it; a replica that loses
/// that race gets 409 AlreadyExists and reads the winner's back. Then the CA goes into the
/// webhook configuration's `caBundle` (idempotent, so every replica may do it).
public enum CertificateBootstrap {
    public static func run(_ setup: SelfSignedSetup, client: KubeClient, logger: Logger) async throws -> CertificateBundle {
        let secretName = "\(setup.namespace)/\(setup.secretName)"
        let bundle: CertificateBundle
        if let existing = try await client.secret(namespace: setup.namespace, name: setup.secretName) {
            bundle = try decode(existing, name: secretName)
            logger.info("using the certificate stored in the secret", ["secret": .string(secretName)])
        } else {
            let generated = try SelfSignedCertificates.generate(
                commonName: "\(setup.service).\(setup.namespace).svc",
                dnsNames: SelfSignedCertificates.serviceNames(service: setup.service, namespace: setup.namespace))
            if let winner = try await createUnlessExists(encode(generated, name: setup.secretName), setup: setup, client: client) {
                bundle = try decode(winner, name: secretName)
                logger.info("another replica stored a certificate first; using it", ["secret": .string(secretName)])
            } else {
                bundle = generated
                logger.info("generated a certificate and stored it in the secret", ["secret": .string(secretName)])
            }
        }
        try write(bundle, to: setup)
        if let name = setup.webhookConfiguration {
            let changed = try await client.setCABundle(mutatingWebhookConfiguration: name, caBundle: Base64.encode(bundle.caCertificate))
            logger.info("webhook configuration trusts the CA", ["mutatingWebhookConfiguration": .string(name), "changed": .bool(changed)])
        }
        return bundle
    }

    /// Creates the Secret; when another replica created it first, returns theirs.
    private static func createUnlessExists(_ secret: JSON, setup: SelfSignedSetup,
                                           client: KubeClient) async throws(KubeError) -> JSON? {
        do {
            _ = try await client.createSecret(namespace: setup.namespace, secret)
            return nil
        } catch {
            guard error.isAlreadyExists,
                  let winner = try await client.secret(namespace: setup.namespace, name: setup.secretName) else { throw error }
            return winner
        }
    }

    /// A `kubernetes.io/tls` Secret, with the CA beside the pair as `ca.crt` (cert-manager's layout).
    static func encode(_ bundle: CertificateBundle, name: String) -> JSON {
        [
            "apiVersion": "v1", "kind": "Secret",
            "metadata": ["name": .string(name), "labels": ["app.kubernetes.io/name": "tandem", "app.kubernetes.io/component": "webhook"]],
            "type": "kubernetes.io/tls",
            "data": [
                "ca.crt": .string(Base64.encode(bundle.caCertificate)),
                "tls.crt": .string(Base64.encode(bundle.certificate)),
                "tls.key": .string(Base64.encode(bundle.privateKey)),
            ],
        ]
    }

    static func decode(_ secret: JSON, name: String) throws(ConfigError) -> CertificateBundle {
        func field(_ key: String) throws(ConfigError) -> [UInt8] {
            guard let text = secret["data"]?[key]?.stringValue, let bytes = Base64.decode(text), !bytes.isEmpty else {
                throw ConfigError("secret \(name) has no usable \(key); delete it and a new certificate will be generated")
            }
            return bytes
        }
        return CertificateBundle(caCertificate: try field("ca.crt"), certificate: try field("tls.crt"), privateKey: try field("tls.key"))
    }

    /// Writes each file beside itself and renames it into place, so a reader never sees half.
    static func write(_ bundle: CertificateBundle, to setup: SelfSignedSetup) throws(ConfigError) {
        mkdir(setup.directory, 0o700)
        for (path, bytes, mode) in [(setup.caFile, bundle.caCertificate, 0o644), (setup.certificateFile, bundle.certificate, 0o644),
                                    (setup.keyFile, bundle.privateKey, 0o600)] as [(String, [UInt8], mode_t)] {
            let temporary = path + ".tmp"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
            guard fd >= 0 else { throw ConfigError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == bytes.count, rename(temporary, path) == 0 else {
                throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
        }
    }
}
