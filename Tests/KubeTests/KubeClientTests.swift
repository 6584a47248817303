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
        #expect(config == KubeConfig(host: "10.96.0.1", port: 443, certificateAuthority: .file(directory + "/ca.crt"),
                                     tokenFile: directory + "/token", namespace: "tandem-system", source: "in-cluster"))
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

    @Test func listPagesAreOneConsistentSnapshot() async throws {
        let fixture = try await KubeFixture.start()
        let (server, client) = (fixture.server, fixture.client)
        for name in ["a", "b", "c", "d", "e"] {
            server.seed("/api/v1/namespaces/shop/services", ["metadata": ["name": .string(name), "labels": ["tier": name < "c" ? "web" : "db"]]])
        }
        let first = try await client.list("/api/v1/namespaces/shop/services", limit: 2)
        #expect(first.items.map { $0["metadata"]?["name"] } == ["a", "b"])
        #expect(first.items.allSatisfy { $0["kind"] == "Service" && $0["apiVersion"] == "v1" })
        // Writes between pages do not show: every page is read at the first page's version.
        server.remove("/api/v1/namespaces/shop/services/d")
        server.seed("/api/v1/namespaces/shop/services", ["metadata": ["name": "bb"]])
        let second = try await client.list("/api/v1/namespaces/shop/services", limit: 2, continue: first.continueToken)
        #expect(second.items.map { $0["metadata"]?["name"] } == ["c", "d"])
        #expect(second.resourceVersion == first.resourceVersion)
        let last = try await client.list("/api/v1/namespaces/shop/services", limit: 2, continue: second.continueToken)
        #expect(last.items.map { $0["metadata"]?["name"] } == ["e"])
        #expect(last.continueToken == nil)
        // A fresh list sees the writes.
        let now = try await client.list("/api/v1/namespaces/shop/services")
        #expect(now.items.map { $0["metadata"]?["name"] } == ["a", "b", "bb", "c", "e"])
        #expect(now.resourceVersion == String(server.resourceVersion))
        let web = try await client.list("/api/v1/namespaces/shop/services", labelSelector: "tier=web")
        #expect(web.items.map { $0["metadata"]?["name"] } == ["a", "b"])
        let notWeb = try await client.list("/api/v1/namespaces/shop/services", labelSelector: "tier!=web,tier")
        #expect(notWeb.items.map { $0["metadata"]?["name"] } == ["c", "e"])
        #expect(server.requestTargets.last == "GET /api/v1/namespaces/shop/services?labelSelector=tier%21%3Dweb%2Ctier")
        // Once compacted past the first page's version, its token has expired.
        let again = try await client.list("/api/v1/namespaces/shop/services", limit: 2)
        server.seed("/api/v1/namespaces/shop/services", ["metadata": ["name": "f"]])
        server.compact(upTo: server.resourceVersion)
        do {
            _ = try await client.list("/api/v1/namespaces/shop/services", limit: 2, continue: again.continueToken)
            Issue.record("an expired continue token was accepted")
        } catch {
            #expect(error.isExpired)
            #expect(error.reason == "Expired")
        }
        await fixture.stop()
    }

    @Test func updateAndDeleteFollowTheServersSemantics() async throws {
        let fixture = try await KubeFixture.start()
        let client = fixture.client
        let path = "/apis/coordination.k8s.io/v1/namespaces/shop/leases"
        let created = try await client.create(path, ["apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": ["name": "bridge"],
                                                     "spec": ["holderIdentity": "a"]])
        var changed = FakeKubeAPIServer.mergePatch(created, ["spec": ["holderIdentity": "b"]])
        let updated = try await client.update(path + "/bridge", changed)
        #expect(updated["spec"]?["holderIdentity"] == "b")
        #expect(updated["metadata"]?["uid"] == created["metadata"]?["uid"])
        #expect(updated["metadata"]?["resourceVersion"] != created["metadata"]?["resourceVersion"])
        // The version that was read is stale now: 409 Conflict.
        changed = FakeKubeAPIServer.mergePatch(created, ["spec": ["holderIdentity": "c"]])
        do {
            _ = try await client.update(path + "/bridge", changed)
            Issue.record("a stale update went through")
        } catch {
            #expect(error.isConflict)
            #expect(error.message.hasSuffix(#"leases.coordination.k8s.io "bridge": the object has been modified; please apply your changes to the latest version and try again"#))
        }
        // Without a version the update is unconditional.
        changed = FakeKubeAPIServer.mergePatch(changed, ["metadata": ["resourceVersion": nil]])
        #expect(try await client.update(path + "/bridge", changed)["spec"]?["holderIdentity"] == "c")
        await #expect(throws: KubeError.self) { try await client.update(path + "/missing", ["metadata": ["name": "missing"]]) }
        let status = try await client.delete(path + "/bridge")
        #expect(status["status"] == "Success")
        #expect(status["details"]?["uid"] == created["metadata"]?["uid"])
        do {
            try await client.delete(path + "/bridge")
            Issue.record("deleted twice")
        } catch {
            #expect(error.isNotFound)
        }
        await fixture.stop()
    }

    @Test func watchStreamsChangesAsTheyHappen() async throws {
        let fixture = try await KubeFixture.start()
        let (server, client) = (fixture.server, fixture.client)
        let path = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"
        server.seed(path, ["metadata": ["name": "before"], "addressType": "IPv4", "endpoints": [], "ports": []])
        let from = String(server.resourceVersion)
        let events = try await client.watch(path, resourceVersion: from, timeoutSeconds: 30)
        #expect(await eventually { server.openWatches == 1 })
        var iterator = events.makeAsyncIterator()
        server.seed(path, ["metadata": ["name": "web"], "addressType": "IPv4", "endpoints": [], "ports": []])
        guard case .added(let added) = try await iterator.next() else { Issue.record("no ADDED"); return }
        #expect(added["metadata"]?["name"] == "web")
        server.seed(path, ["metadata": ["name": "web", "labels": ["x": "y"]], "addressType": "IPv4", "endpoints": [], "ports": []])
        guard case .modified(let modified) = try await iterator.next() else { Issue.record("no MODIFIED"); return }
        #expect(modified["metadata"]?["labels"]?["x"] == "y")
        server.bookmark()
        #expect(try await iterator.next() == .bookmark(resourceVersion: String(server.resourceVersion)))
        server.remove(path + "/web")
        guard case .deleted(let deleted) = try await iterator.next() else { Issue.record("no DELETED"); return }
        // The deletion has its own, newer version.
        #expect(deleted["metadata"]?["resourceVersion"] == .string(String(server.resourceVersion)))
        #expect(deleted["metadata"]?["resourceVersion"] != modified["metadata"]?["resourceVersion"])
        // Other namespaces and other resources are not in this stream.
        server.seed("/apis/discovery.k8s.io/v1/namespaces/other/endpointslices", ["metadata": ["name": "web"]])
        server.seed("/api/v1/namespaces/shop/services", ["metadata": ["name": "web"]])
        server.seed(path, ["metadata": ["name": "last"]])
        guard case .added(let last) = try await iterator.next() else { Issue.record("no ADDED"); return }
        #expect(last["metadata"]?["name"] == "last")
        // Leaving the stream closes it on the server too.
        _ = consume iterator
        _ = consume events
        #expect(await eventually { server.openWatches == 0 })
        await fixture.stop()
    }

    @Test func watchWithoutAVersionStartsWithWhatExistsAndEndsOnTime() async throws {
        let fixture = try await KubeFixture.start()
        let (server, client) = (fixture.server, fixture.client)
        for name in ["b", "a"] { server.seed("/api/v1/namespaces/shop/pods", ["metadata": ["name": .string(name)]]) }
        server.seed("/api/v1/namespaces/other/pods", ["metadata": ["name": "c"]])
        var names: [String] = []
        let started = ContinuousClock.now
        for try await event in try await client.watch("/api/v1/pods", resourceVersion: nil, timeoutSeconds: 1) {
            guard case .added(let object) = event else { Issue.record("unexpected \(event)"); continue }
            names.append(object["metadata"]!["namespace"]!.stringValue! + "/" + object["metadata"]!["name"]!.stringValue!)
        }
        #expect(names == ["other/c", "shop/a", "shop/b"])
        #expect(ContinuousClock.now - started >= .milliseconds(900))
        #expect(server.requestTargets.last == "GET /api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1")
        await fixture.stop()
    }

    @Test func aTooOldWatchGetsTheExpiredEventThenEnds() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.seed("/api/v1/namespaces/shop/pods", ["metadata": ["name": "a"]])
        fixture.server.compact(upTo: fixture.server.resourceVersion)
        var events: [WatchEvent] = []
        for try await event in try await fixture.client.watch("/api/v1/namespaces/shop/pods", resourceVersion: "100", timeoutSeconds: 30) {
            events.append(event)
        }
        #expect(events == [.error(code: 410, message: "too old resource version: 100 (\(fixture.server.resourceVersion))")])
        await fixture.stop()
    }

    @Test func serverErrorsAreKubeErrorsWithTheirStatus() async throws {
        let fixture = try await KubeFixture.start()
        fixture.server.failNext(1, status: 503)
        do {
            _ = try await fixture.client.list("/api/v1/pods")
            Issue.record("the failure was not reported")
        } catch {
            #expect(error == KubeError("GET /api/v1/pods: the server is currently unable to handle the request", status: 503, reason: "ServiceUnavailable"))
        }
        fixture.server.failNext(1, pathPrefix: "/api/v1/pods")
        do {
            _ = try await fixture.client.watch("/api/v1/pods", resourceVersion: nil, timeoutSeconds: 1)
            Issue.record("the failure was not reported")
        } catch {
            #expect(error == KubeError("watch /api/v1/pods: Internal error occurred: simulated failure", status: 500, reason: "InternalError"))
        }
        #expect(try await fixture.client.list("/api/v1/pods").items.isEmpty)
        await fixture.stop()
    }

    @Test func mergePatchFollowsRFC7386() throws {
        let target = try JSONReader.parse(#"{"a":"b","c":{"d":"e","f":"g"},"l":[1,2]}"#)
        let patch = try JSONReader.parse(#"{"a":"z","c":{"f":null},"l":[3],"n":{"x":1}}"#)
        #expect(FakeKubeAPIServer.mergePatch(target, patch) == (try JSONReader.parse(#"{"a":"z","c":{"d":"e"},"l":[3],"n":{"x":1}}"#)))
    }
}
