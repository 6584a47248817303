import Document
import Foundation
import Kube
import Kubernetes
import Net
import Testing
import TestSupport

@Suite(.serialized) struct KubeClientTests {
    static let mwcPath = KubeClient.mutatingWebhookConfigurationPath("tandem")

    @Test func inClusterConfigReadsTheServiceAccount() throws {
        let directory = NSTemporaryDirectory() + "tandem-sa-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "tok\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        try "tandem-system\n".write(toFile: directory + "/namespace", atomically: true, encoding: .utf8)
        let config = try KubeConfig.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: directory)
        #expect(config == KubeConfig(host: "10.96.0.1", port: 443, caFile: directory + "/ca.crt",
                                     tokenFile: directory + "/token", namespace: "tandem-system"))
        #expect(throws: KubeError("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")) {
            try KubeConfig.inCluster(environment: [:], serviceAccountDirectory: directory)
        }
        #expect(throws: KubeError("KUBERNETES_SERVICE_PORT \"https\" is not a port")) {
            try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "https"],
                                     serviceAccountDirectory: directory)
        }
        #expect(throws: KubeError("cannot read the service account token /nonexistent/token")) {
            try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "443"],
                                     serviceAccountDirectory: "/nonexistent")
        }
    }

    @Test func versionComesFromTheServer() async throws {
        let fixture = try await KubeFixture.start(gitVersion: "v1.29.2")
        #expect(try await fixture.client.version() == KubernetesVersion(major: 1, minor: 29, patch: 2))
        #expect(fixture.server.requests == ["GET /version"])
        await fixture.stop()
    }

    @Test func wrongTokenIsUnauthorized() async throws {
        let fixture = try await KubeFixture.start(token: "stolen")
        await #expect(throws: KubeError("GET /version: Unauthorized", status: 401, reason: "Unauthorized")) {
            try await fixture.client.version()
        }
        await fixture.stop()
    }

    @Test func tokenFileIsReadForEveryRequest() async throws {
        let file = NSTemporaryDirectory() + "tandem-token-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "old\n".write(toFile: file, atomically: true, encoding: .utf8)
        let fixture = try await KubeFixture.start(tokenFile: file)
        await #expect(throws: KubeError.self) { try await fixture.client.version() }
        try "\(fixture.server.token)\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await fixture.client.version() == KubernetesVersion(major: 1, minor: 28, patch: 4))
        await fixture.stop()
    }

    @Test func secretsFollowTheServersSemantics() async throws {
        let fixture = try await KubeFixture.start()
        let client = fixture.client
        #expect(try await client.secret(namespace: "tandem", name: "certs") == nil)
        let secret: JSON = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "certs"], "type": "kubernetes.io/tls",
                            "data": ["tls.crt": "Y3J0", "tls.key": "a2V5"]]
        let created = try await client.createSecret(namespace: "tandem", secret)
        #expect(created["metadata"]?["resourceVersion"] == "101")
        #expect(created["metadata"]?["uid"]?.stringValue?.isEmpty == false)
        #expect(try await client.secret(namespace: "tandem", name: "certs") == created)
        do {
            _ = try await client.createSecret(namespace: "tandem", secret)
            Issue.record("a second create succeeded")
        } catch {
            #expect(error.isAlreadyExists)
            #expect(error.description == #"POST /api/v1/namespaces/tandem/secrets: secrets "certs" already exists (HTTP 409 AlreadyExists)"#)
        }
        do {
            _ = try await client.get(KubeClient.secretPath(namespace: "tandem", name: "missing"))
            Issue.record("found a missing secret")
        } catch {
            #expect(error == KubeError(#"GET /api/v1/namespaces/tandem/secrets/missing: secrets "missing" not found"#, status: 404, reason: "NotFound"))
        }
        await fixture.stop()
    }

    @Test func caBundleIsSetOnEveryWebhook() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", KubeFixture.webhookConfiguration())
        #expect(try await fixture.client.setCABundle(mutatingWebhookConfiguration: "tandem", caBundle: "Q0E="))
        let stored = try #require(fixture.server.object(Self.mwcPath))
        #expect(stored["webhooks"]?.arrayValue?.map { $0["clientConfig"]?["caBundle"] } == ["Q0E=", "Q0E="])
        #expect(stored["webhooks"]?.arrayValue?[0]["clientConfig"]?["service"]?["path"] == "/inject")
        // Already set: no write.
        #expect(try await !fixture.client.setCABundle(mutatingWebhookConfiguration: "tandem", caBundle: "Q0E="))
        #expect(fixture.server.requests.filter { $0.hasPrefix("PATCH") }.count == 1)
        await fixture.stop()
    }

    @Test func caBundlePatchIsRetriedAfterAConflict() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        server.seed("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", KubeFixture.webhookConfiguration())
        // Someone else (cert-manager, helm) writes between our read and our patch.
        server.beforeNext(.patch) {
            server.seed("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", KubeFixture.webhookConfiguration())
        }
        #expect(try await fixture.client.setCABundle(mutatingWebhookConfiguration: "tandem", caBundle: "Q0E="))
        #expect(server.requests == [
            "GET \(Self.mwcPath)", "PATCH \(Self.mwcPath)", "GET \(Self.mwcPath)", "PATCH \(Self.mwcPath)",
        ])
        #expect(server.object(Self.mwcPath)?["webhooks"]?.arrayValue?.allSatisfy { $0["clientConfig"]?["caBundle"] == "Q0E=" } == true)
        await fixture.stop()
    }

    @Test func missingWebhookConfigurationIsNotFound() async throws {
        let fixture = try await KubeFixture.start()
        do {
            try await fixture.client.setCABundle(mutatingWebhookConfiguration: "tandem", caBundle: "Q0E=")
            Issue.record("patched a missing configuration")
        } catch {
            #expect(error.isNotFound)
        }
        await fixture.stop()
    }

    @Test func mergePatchFollowsRFC7386() throws {
        let target = try JSONReader.parse(#"{"a":"b","c":{"d":"e","f":"g"},"l":[1,2]}"#)
        let patch = try JSONReader.parse(#"{"a":"z","c":{"f":null},"l":[3],"n":{"x":1}}"#)
        #expect(FakeKubeAPIServer.mergePatch(target, patch) == (try JSONReader.parse(#"{"a":"z","c":{"d":"e"},"l":[3],"n":{"x":1}}"#)))
    }
}
