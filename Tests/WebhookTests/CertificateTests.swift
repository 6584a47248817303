import Document
import Foundation
import Injection
import Kube
import Net
import Telemetry
import Kubernetes
import Testing
import TestSupport
@testable import Webhook

@Suite(.serialized) struct CertificateTests {
    static let mwcCollection = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"

    static func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "tandem-certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func generatedCertificateVerifiesAndServesTheServiceNames() async throws {
        let names = SelfSignedCertificates.serviceNames(service: "tandem-webhook", namespace: "tandem-system")
        #expect(names == ["tandem-webhook", "tandem-webhook.tandem-system", "tandem-webhook.tandem-system.svc",
                          "tandem-webhook.tandem-system.svc.cluster.local"])
        let bundle = try SelfSignedCertificates.generate(commonName: "tandem-webhook.tandem-system.svc", dnsNames: names,
                                                         ipAddresses: ["127.0.0.1"])
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let setup = SelfSignedSetup(namespace: "tandem-system", service: "tandem-webhook", secretName: "s",
                                    webhookConfiguration: nil, directory: directory)
        try CertificateBootstrap.write(bundle, to: setup)

        let verify = try runProcess(["openssl", "verify", "-CAfile", setup.caFile, setup.certificateFile])
        #expect(verify.status == 0, Comment(rawValue: verify.error))
        let text = try runProcess(["openssl", "x509", "-noout", "-text", "-in", setup.certificateFile])
        let description = String(decoding: text.output, as: UTF8.self)
        #expect(description.contains("DNS:tandem-webhook.tandem-system.svc.cluster.local"))
        #expect(description.contains("TLS Web Server Authentication"))
        #expect(description.contains("CA:FALSE"))
        #expect(description.contains("prime256v1"))
        let ca = String(decoding: try runProcess(["openssl", "x509", "-noout", "-text", "-in", setup.caFile]).output, as: UTF8.self)
        #expect(ca.contains("CA:TRUE"))
        #expect(String(decoding: bundle.privateKey, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----"))

        // Served by Net and trusted by curl under the Service's name.
        let tls = try TLSContext(.server(certificateFile: setup.certificateFile, keyFile: setup.keyFile))
        let group = try EventLoopGroup(threads: 1)
        var routes = HTTPRoutes()
        routes.add(.get, "/healthz") { _ in .text(200, "ok") }
        let server = HTTPServer(group: group, configuration: HTTPServerConfiguration(tls: tls), routes: routes)
        try await server.start()
        let host = "tandem-webhook.tandem-system.svc"
        let curl = try runProcess(["curl", "-sS", "--cacert", setup.caFile, "--resolve", "\(host):\(server.port):127.0.0.1",
                                   "https://\(host):\(server.port)/healthz"])
        #expect(String(decoding: curl.output, as: UTF8.self) == "ok", Comment(rawValue: curl.error))
        await server.shutdown(gracePeriod: .milliseconds(100))
        group.shutdown()
    }

    @Test func eachGenerationIsANewCA() throws {
        let first = try SelfSignedCertificates.generate(commonName: "a", dnsNames: ["a"])
        let second = try SelfSignedCertificates.generate(commonName: "a", dnsNames: ["a"])
        #expect(first.caCertificate != second.caCertificate)
        #expect(first.privateKey != second.privateKey)
    }

    struct Replica {
        let setup: SelfSignedSetup
        let logs = LogLines()
        var logger: Logger { Logger(sink: logs) }
    }

    static func replica(_ directory: String) -> Replica {
        Replica(setup: SelfSignedSetup(namespace: "tandem-system", service: "tandem-webhook", secretName: "tandem-webhook-tls",
                                       webhookConfiguration: "tandem", directory: directory))
    }

    @Test func replicasShareOneSecretAndPatchTheCABundle() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed(Self.mwcCollection, KubeFixture.webhookConfiguration())
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let first = Self.replica(directory + "/one")
        let bundle = try await CertificateBootstrap.run(first.setup, client: fixture.client, logger: first.logger)
        #expect(first.logs.messages == ["generated a certificate and stored it in the secret", "webhook configuration trusts the CA"])
        let secret = try #require(fixture.server.object("/api/v1/namespaces/tandem-system/secrets/tandem-webhook-tls"))
        #expect(secret["type"] == "kubernetes.io/tls")
        #expect(try CertificateBootstrap.decode(secret, name: "x") == bundle)
        #expect(try readFile(first.setup.certificateFile) == bundle.certificate)
        #expect(try readFile(first.setup.keyFile) == bundle.privateKey)
        let mwc = try #require(fixture.server.object(KubeClient.mutatingWebhookConfigurationPath("tandem")))
        #expect(mwc["webhooks"]?.arrayValue?.allSatisfy { $0["clientConfig"]?["caBundle"]?.stringValue == Base64.encode(bundle.caCertificate) } == true)

        let second = Self.replica(directory + "/two")
        #expect(try await CertificateBootstrap.run(second.setup, client: fixture.client, logger: second.logger) == bundle)
        #expect(second.logs.messages == ["using the certificate stored in the secret", "webhook configuration trusts the CA"])
        #expect(fixture.server.requests.filter { $0.hasPrefix("POST") }.count == 1)
        #expect(fixture.server.requests.filter { $0.hasPrefix("PATCH") }.count == 1)
        await fixture.stop()
    }

    @Test func aReplicaThatLosesTheCreateRaceUsesTheWinnersSecret() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed(Self.mwcCollection, KubeFixture.webhookConfiguration())
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let winner = try SelfSignedCertificates.generate(commonName: "winner", dnsNames: ["winner"])
        let server = fixture.server
        server.beforeNext(.post) {
            server.seed("/api/v1/namespaces/tandem-system/secrets", CertificateBootstrap.encode(winner, name: "tandem-webhook-tls"))
        }
        let loser = Self.replica(directory)
        #expect(try await CertificateBootstrap.run(loser.setup, client: fixture.client, logger: loser.logger) == winner)
        #expect(loser.logs.messages.first == "another replica stored a certificate first; using it")
        #expect(try readFile(loser.setup.certificateFile) == winner.certificate)
        let mwc = try #require(fixture.server.object(KubeClient.mutatingWebhookConfigurationPath("tandem")))
        #expect(mwc["webhooks"]?.arrayValue?.first?["clientConfig"]?["caBundle"]?.stringValue == Base64.encode(winner.caCertificate))
        await fixture.stop()
    }

    @Test func theKeeperRestoresACABundleThatWasReset() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed(Self.mwcCollection, KubeFixture.webhookConfiguration())
        let logs = LogLines()
        let group = try EventLoopGroup(threads: 1)
        let keeper = ClusterKeeper(group: group, client: fixture.client, followsVersion: false,
                                   caBundle: .init(webhookConfiguration: "tandem", caBundle: "Q0E="), logger: Logger(sink: logs))
        #expect(await keeper.checkCABundle())
        #expect(await !keeper.checkCABundle(), "nothing to do while it is in place")
        // A re-install sends the object without caBundle.
        fixture.server.seed(Self.mwcCollection, KubeFixture.webhookConfiguration())
        #expect(await keeper.checkCABundle())
        #expect(logs.messages == ["the webhook configuration had lost the CA; restored", "the webhook configuration had lost the CA; restored"])
        #expect(fixture.server.object(KubeClient.mutatingWebhookConfigurationPath("tandem"))?["webhooks"]?.arrayValue?
            .allSatisfy { $0["clientConfig"]?["caBundle"] == "Q0E=" } == true)
        // A version given on the command line is not asked again.
        let version = APIServerVersion(KubernetesVersion(major: 1, minor: 27))
        #expect(await !keeper.checkVersion(version))
        #expect(version.current == KubernetesVersion(major: 1, minor: 27))
        #expect(!fixture.server.requests.contains("GET /version"))
        // Keeping stops with its task and releases its loop.
        let task = Task { await keeper.keep(every: .milliseconds(10), version: version) }
        task.cancel()
        await task.value
        await fixture.stop()
    }

    /// After a control-plane upgrade, lifecycle `auto` follows the new version without a restart.
    @Test func theKeeperFollowsAnUpgradedAPIServer() async throws {
        let fixture = try await KubeFixture.start(gitVersion: "v1.28.4")
        let logs = LogLines()
        let keeper = ClusterKeeper(group: try EventLoopGroup(threads: 1), client: fixture.client, followsVersion: true,
                                   caBundle: nil, logger: Logger(sink: logs))
        let version = APIServerVersion(KubernetesVersion(major: 1, minor: 28, patch: 4))
        #expect(await !keeper.checkVersion(version), "the same version is no change")
        fixture.server.setVersion("v1.29.1")
        #expect(await keeper.checkVersion(version))
        #expect(version.current == KubernetesVersion(major: 1, minor: 29, patch: 1))
        #expect(logs.all.last?["msg"] == "the API server's version changed")
        #expect(logs.all.last?["from"] == "1.28.4" && logs.all.last?["to"] == "1.29.1")
        // An API server that cannot answer keeps the version known so far.
        fixture.server.failNext(1, status: 503)
        #expect(await !keeper.checkVersion(version))
        #expect(version.current == KubernetesVersion(major: 1, minor: 29, patch: 1))
        #expect(logs.messages.last == "cannot ask the API server its version; keeping the one known")
        #expect(await !keeper.checkCABundle(), "no caBundle to keep")
        // A running keeper asks on its own.
        fixture.server.setVersion("v1.30.0")
        let task = Task { await keeper.keep(every: .milliseconds(20), version: version) }
        #expect(await eventually { version.current == KubernetesVersion(major: 1, minor: 30) })
        task.cancel()
        await task.value
        await fixture.stop()
    }

    @Test func aBrokenSecretIsAnErrorThatSaysWhatToDo() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed("/api/v1/namespaces/tandem-system/secrets",
                            ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "tandem-webhook-tls"], "data": ["tls.crt": "eA=="]])
        let replica = Self.replica(try Self.scratch())
        await #expect(throws: ConfigError("secret tandem-system/tandem-webhook-tls has no usable ca.crt; delete it and a new certificate will be generated")) {
            try await CertificateBootstrap.run(replica.setup, client: fixture.client, logger: replica.logger)
        }
        await fixture.stop()
    }
}

/// Log lines kept in memory, for checking what was said.
final class LogLines: LogSink, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [JSON] = []
    func write(_ line: [UInt8]) {
        let parsed = (try? JSONReader.parse(line)) ?? .null
        lock.lock(); lines.append(parsed); lock.unlock()
    }
    var all: [JSON] { lock.lock(); defer { lock.unlock() }; return lines }
    var messages: [String] { all.compactMap { $0["msg"]?.stringValue } }
}
