import Document
import Kube
import Net

/// A fake API server with its own PKI and a client trusting it, torn down together.
public struct KubeFixture: Sendable {
    public let pki: TestPKI
    public let server: FakeKubeAPIServer
    public let group: EventLoopGroup
    public let client: KubeClient

    public static func start(gitVersion: String = "v1.28.4", token: String? = nil, tokenFile: String? = nil) async throws -> KubeFixture {
        let pki = try TestPKI()
        let folder = try pki.issue(commonName: "kube-apiserver", into: "apiserver")
        let server = try await FakeKubeAPIServer(gitVersion: gitVersion, certificateFile: folder + "/tls.crt", keyFile: folder + "/tls.key")
        let group = try EventLoopGroup(threads: 1)
        let config = KubeConfig(host: "127.0.0.1", port: server.port, certificateAuthority: .file(pki.caCertificate), tokenFile: tokenFile,
                                token: tokenFile == nil ? (token ?? server.token) : nil)
        return KubeFixture(pki: pki, server: server, group: group, client: try KubeClient(config: config, loop: group.next()))
    }

    public func stop() async {
        await server.stop()
        group.shutdown()
        pki.remove()
    }

    /// A MutatingWebhookConfiguration named tandem with two webhooks and no caBundle.
    public static func webhookConfiguration() -> JSON {
        ["apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": ["name": "tandem"],
         "webhooks": [
            ["name": "pods.tandem.io", "clientConfig": ["service": ["name": "tandem-webhook", "namespace": "tandem-system", "path": "/inject"]],
             "sideEffects": "None", "admissionReviewVersions": ["v1"]],
            ["name": "pods-legacy.tandem.io", "clientConfig": ["service": ["name": "tandem-webhook", "namespace": "tandem-system", "path": "/inject"]],
             "sideEffects": "None", "admissionReviewVersions": ["v1"]],
         ]]
    }
}
