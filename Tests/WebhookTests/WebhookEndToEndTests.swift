import Document
import Foundation
import Injection
import Testing
import TestSupport

/// The real binary over real TLS on loopback, driven with curl and openssl as the apiserver and
/// an operator would.
@Suite(.serialized) struct WebhookEndToEndTests {
    static let requests = "kube-apiserver-1.28.4/admission-requests"

    static func patch(in body: String) throws -> JSONPatch? {
        guard let text = try JSONReader.parse(body)["response"]?["patch"]?.stringValue else { return nil }
        return try JSONPatch(json: JSONReader.parse(#require(Base64.decode(text))))
    }

    static func metric(_ port: Int, _ pki: TestPKI, _ series: String) throws -> String? {
        let (_, text) = try curl(port: port, caFile: pki.caCertificate, method: "GET", path: "/metrics", contentType: nil)
        return text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.map { String($0.dropFirst(series.count + 1)) }
    }

    @Test func servesReloadsAndSurvivesBadRequests() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let certs = try MountedFolder(path: pki.directory + "/mounted-tls")
        let first = try pki.issue(commonName: "tandem-first", into: "first")
        try certs.publish(["tls.crt": readFile(first + "/tls.crt"), "tls.key": readFile(first + "/tls.key")], version: "1")
        let config = try MountedFolder(path: pki.directory + "/mounted-config")
        try config.publish(["values.yaml": Array("injection:\n  enabled: true\n".utf8)], version: "1")

        let server = try TandemServerProcess([
            "webhook", "--listen", "127.0.0.1:0", "--tls-cert", certs.path + "/tls.crt", "--tls-key", certs.path + "/tls.key",
            "--config", config.path + "/values.yaml", "--kube-version", "1.28.4", "--reload-interval", "0.2",
            "--shutdown-delay", "1",
        ])
        let port = try await server.waitForPort()
        let ca = pki.caCertificate
        let sample = try SharedFixtures.bytes("\(Self.requests)/b-pod-create-generatename-ownerrefs.request.json")
        let sampleObject = try JSONReader.parse(sample)["request"]!["object"]!

        func injectsSample() throws -> Bool {
            let (status, body) = try curl(port: port, caFile: ca, body: sample)
            #expect(status == 200)
            guard let patch = try Self.patch(in: body) else { return false }
            #expect(Admission.carriesProxy(try patch.apply(to: sampleObject)))
            return true
        }

        // Every captured request is answered 200 with its uid.
        for name in try SharedFixtures.files(in: Self.requests, suffix: ".request.json") {
            let bytes = try SharedFixtures.bytes("\(Self.requests)/\(name)")
            let (status, body) = try curl(port: port, caFile: ca, body: bytes)
            #expect(status == 200, "\(name)")
            #expect(try JSONReader.parse(body)["response"]?["uid"] == JSONReader.parse(bytes)["request"]?["uid"])
        }
        #expect(try injectsSample())
        #expect(try curl(port: port, caFile: ca, method: "GET", path: "/healthz", contentType: nil) == (200, "ok\n"))
        #expect(try curl(port: port, caFile: ca, method: "GET", path: "/readyz", contentType: nil) == (200, "ok\n"))

        // Bad requests get their status and message; the server keeps serving.
        func error(_ code: Int, _ message: String) -> String {
            #"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"","allowed":false,"status":{"metadata":{},"message":"\#(message)","code":\#(code)}}}"# + "\n"
        }
        let bad: [((Int, String), String?, [UInt8])] = [
            ((400, error(400, "couldn't decode the AdmissionReview: line 1, column 1: unexpected character 'h', expected a value")),
             "application/json", Array("hello".utf8)),
            ((400, error(400, "contentType=text/plain, expected application/json")), "text/plain", sample),
            ((400, error(400, "request.uid is missing")), "application/json",
             Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.utf8)),
            ((400, error(400, "apiVersion=admission.k8s.io/v1beta1, expected admission.k8s.io/v1")), "application/json",
             Array(#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#.utf8)),
            // Refused from the Content-Length alone, before 7 MiB are read (Net's own 413 body).
            ((413, "body too large\n"), "application/json", [UInt8](repeating: 0x20, count: Admission.maxBodyBytes + 1)),
        ]
        for (expected, contentType, body) in bad {
            let got = try curl(port: port, caFile: ca, contentType: contentType, body: body)
            #expect(got == expected)
            #expect(try injectsSample())
        }
        #expect(try curl(port: port, caFile: ca, method: "GET", path: "/inject", contentType: nil).0 == 405)
        #expect(try Self.metric(port, pki, #"tandem_webhook_admissions_total{outcome="bad_request",reason="bad_request"}"#) == "4")
        #expect(try Self.metric(port, pki, #"tandem_webhook_admissions_total{outcome="allowed",reason="opted_out_annotation"}"#) == "1")
        let (_, exposition) = try curl(port: port, caFile: pki.caCertificate, method: "GET", path: "/metrics", contentType: nil)
        let buildInfo = exposition.split(separator: "\n").first { $0.hasPrefix("tandem_build_info{") }
        #expect(buildInfo?.hasPrefix(#"tandem_build_info{version="0.1.0",revision=""#) == true)
        #expect(buildInfo?.contains(#"libyaml="0.2.5",openssl="OpenSSL 3."#) == true)

        // The big red button: injection stops within the reload interval, without a restart.
        try config.publish(["values.yaml": Array("injection:\n  enabled: false\n".utf8)], version: "2")
        #expect(try await eventually(timeout: .seconds(10)) { try !injectsSample() })
        #expect(try Self.metric(port, pki, #"tandem_webhook_config_reloads_total{result="success"}"#) == "1")
        #expect(try Self.metric(port, pki, "tandem_webhook_injection_enabled") == "0")
        #expect(try Self.metric(port, pki, #"tandem_webhook_admissions_total{outcome="allowed",reason="injection_disabled"}"#) != nil)

        // An invalid config is reported and the previous one kept.
        try config.publish(["values.yaml": Array("injection:\n  enabled: maybe\n".utf8)], version: "3")
        #expect(try await eventually(timeout: .seconds(10)) { try Self.metric(port, pki, #"tandem_webhook_config_reloads_total{result="failure"}"#) == "1" })
        #expect(try Self.metric(port, pki, "tandem_webhook_config_valid") == "0")
        #expect(try !injectsSample())
        let rejected = server.logs("config rejected; keeping the previous config")
        #expect(rejected.count == 1)
        #expect(rejected.first?["error"]?.stringValue?.hasSuffix(#"injection.enabled: expected a boolean, got "maybe""#) == true)

        // Switched back on.
        try config.publish(["values.yaml": Array("injection:\n  enabled: true\n".utf8)], version: "4")
        #expect(try await eventually(timeout: .seconds(10)) { try injectsSample() })

        // A new certificate in the mounted Secret is served without a restart.
        #expect(try pki.servedCommonName(port: port) == "tandem-first")
        let second = try pki.issue(commonName: "tandem-second", into: "second")
        try certs.publish(["tls.crt": readFile(second + "/tls.crt"), "tls.key": readFile(second + "/tls.key")], version: "2")
        #expect(try await eventually(timeout: .seconds(10)) { try pki.servedCommonName(port: port) == "tandem-second" })
        #expect(try injectsSample())

        // Each decision is logged with its reason code.
        let admissions = server.logs("admission")
        #expect(admissions.contains { $0["reason"] == "injected" && $0["name"] == "checkout-7d9f8b6c5d-*" && $0["namespace"] == "shop" })
        #expect(admissions.contains { $0["reason"] == "operation_ignored" && $0["operation"] == "UPDATE" })
        #expect(admissions.contains { $0["outcome"] == "bad_request" && $0["message"] == "request.uid is missing" })
        #expect(admissions.contains { $0["dryRun"] == true })

        // SIGTERM: readiness fails at once while reviews are still answered, then it stops.
        let terminated = ContinuousClock.now
        server.process.terminate()
        #expect(try await eventually(timeout: .seconds(10)) { try curl(port: port, caFile: ca, method: "GET", path: "/readyz", contentType: nil) == (503, "shutting down\n") })
        #expect(try injectsSample())
        #expect(server.waitForExit() == 0)
        #expect(ContinuousClock.now - terminated >= .seconds(1))
        #expect(server.logs("webhook stopped").count == 1)
    }

    @Test func refusesToStartWithABadConfig() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let folder = try pki.issue(commonName: "x", into: "x")
        let bad = pki.directory + "/bad.yaml"
        try Data("proxy:\n  image: \"\"\n".utf8).write(to: URL(fileURLWithPath: bad))
        let server = try TandemServerProcess(["webhook", "--listen", "127.0.0.1:0", "--tls-cert", folder + "/tls.crt",
                                              "--tls-key", folder + "/tls.key", "--config", bad])
        #expect(server.waitForExit() == 1)
        #expect(server.logs("cannot start").first?["error"]?.stringValue == "config \(bad):2:10: proxy.image: expected an image reference, got \"\"")
    }

    @Test func usageErrorsExit64() throws {
        let run = try runProcess([tandemBinary, "webhook", "--listen", "nowhere"])
        #expect(run.status == 64)
        #expect(run.error.hasPrefix("tandem webhook: --tls-cert and --tls-key are required"))
        let help = try runProcess([tandemBinary, "webhook", "--help"])
        #expect(help.status == 0)
        #expect(String(decoding: help.output, as: UTF8.self).contains("--tls-cert FILE"))
    }
}

/// `tandem webhook --self-signed` in a "cluster" made of the fake API server.
@Suite(.serialized) struct SelfSignedEndToEndTests {
    @Test func bootstrapsFromTheAPIServerAndServesNativeSidecarsOn1_29() async throws {
        let fixture = try await KubeFixture.start(gitVersion: "v1.29.3")
        fixture.server.seed("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", KubeFixture.webhookConfiguration())
        let serviceAccount = fixture.pki.directory + "/serviceaccount"
        try FileManager.default.createDirectory(atPath: serviceAccount, withIntermediateDirectories: true)
        try fixture.server.token.write(toFile: serviceAccount + "/token", atomically: true, encoding: .utf8)
        try "tandem-system".write(toFile: serviceAccount + "/namespace", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: fixture.pki.caCertificate, toPath: serviceAccount + "/ca.crt")
        let certificates = fixture.pki.directory + "/webhook-certs"

        let webhook = try TandemServerProcess(
            ["webhook", "--listen", "127.0.0.1:0", "--self-signed", "--cert-dir", certificates, "--service-account-dir", serviceAccount,
             "--shutdown-delay", "0"],
            environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(fixture.server.port)])
        let port = try await webhook.waitForPort()
        #expect(webhook.logs("asked the API server its version").first?["kubernetesVersion"] == "1.29.3")
        #expect(webhook.logs("generated a certificate and stored it in the secret").count == 1)

        // The CA in the Secret and in the webhook configuration is the one that signs what is served.
        let secret = try #require(fixture.server.object("/api/v1/namespaces/tandem-system/secrets/tandem-webhook-tls"))
        let caFromSecret = try #require(Base64.decode(secret["data"]?["ca.crt"]?.stringValue ?? ""))
        let mwc = fixture.server.object("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tandem")
        #expect(mwc?["webhooks"]?.arrayValue?.first?["clientConfig"]?["caBundle"]?.stringValue == Base64.encode(caFromSecret))
        let caFile = fixture.pki.directory + "/ca-from-secret.crt"
        try Data(caFromSecret).write(to: URL(fileURLWithPath: caFile))

        let sample = try SharedFixtures.bytes("kube-apiserver-1.28.4/admission-requests/a-pod-create-two-containers.request.json")
        let (status, body) = try curl(port: port, caFile: caFile, body: sample, host: "tandem-webhook.tandem-system.svc")
        #expect(status == 200)
        let patch = try #require(try WebhookEndToEndTests.patch(in: body))
        let patched = try patch.apply(to: JSONReader.parse(sample)["request"]!["object"]!)
        #expect(patched["spec"]?["initContainers"]?.arrayValue?.first?["name"] == "tandem-proxy", "1.29 has native sidecars")
        #expect(webhook.stop() == 0)
        await fixture.stop()
    }
}

extension SelfSignedEndToEndTests {
    /// Outside a pod, `--kubeconfig` says where the API server is and how to log in.
    @Test func asksTheVersionThroughAKubeconfig() async throws {
        let fixture = try await KubeFixture.start(gitVersion: "v1.28.4")
        let kubeconfig = fixture.pki.directory + "/kubeconfig"
        try """
            apiVersion: v1
            kind: Config
            current-context: fake
            contexts: [{name: fake, context: {cluster: fake, user: admin}}]
            clusters: [{name: fake, cluster: {server: "https://127.0.0.1:\(fixture.server.port)", certificate-authority: "\(fixture.pki.caCertificate)"}}]
            users: [{name: admin, user: {token: "\(fixture.server.token)"}}]
            """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        let folder = try fixture.pki.issue(commonName: "tandem-webhook", into: "serving")
        let webhook = try TandemServerProcess(["webhook", "--listen", "127.0.0.1:0", "--tls-cert", folder + "/tls.crt",
                                               "--tls-key", folder + "/tls.key", "--kubeconfig", kubeconfig, "--shutdown-delay", "0"])
        _ = try await webhook.waitForPort()
        #expect(webhook.logs("asked the API server its version").first?["kubernetesVersion"] == "1.28.4")
        #expect(webhook.stop() == 0)
        await fixture.stop()
    }
}

/// A client that connects and then stalls (slowloris) is dropped, and does not hold others up.
@Suite(.serialized) struct SlowClientTests {
    @Test func aStalledConnectionIsClosedWhileOthersAreServed() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let folder = try pki.issue(commonName: "slow", into: "slow")
        let server = try TandemServerProcess(["webhook", "--listen", "127.0.0.1:0", "--tls-cert", folder + "/tls.crt",
                                              "--tls-key", folder + "/tls.key", "--kube-version", "1.28", "--shutdown-delay", "0"])
        let port = try await server.waitForPort()

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        let started = ContinuousClock.now
        // Others are served while the stalled connection is open.
        let sample = try SharedFixtures.bytes("kube-apiserver-1.28.4/admission-requests/a-pod-create-two-containers.request.json")
        #expect(try curl(port: port, caFile: pki.caCertificate, body: sample).0 == 200)
        // The server gives up on it after its 5 s header timeout: the read sees end of stream.
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        let received = recv(fd, &byte, 1, 0)
        let waited = ContinuousClock.now - started
        #expect(received == 0, "closed by the server")
        #expect(waited >= .seconds(4) && waited < .seconds(12), "closed after \(waited)")
        #expect(server.stop() == 0)
    }
}
