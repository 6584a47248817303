import Document
import Foundation
import Kube
import Kubernetes
import Net
import Testing
import TestSupport

/// A folder of kubeconfig files, removed afterwards.
private struct Folder {
    let path = NSTemporaryDirectory() + "tandem-kubeconfig-\(UUID().uuidString)"

    init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        return path + "/" + name
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

private let twoContexts = """
    apiVersion: v1
    kind: Config
    current-context: kind-dev
    clusters:
    - name: kind-dev
      cluster:
        server: https://127.0.0.1:6443
        certificate-authority: pki/ca.crt
    - name: prod
      cluster:
        server: https://[fd00::1]:443
        certificate-authority-data: Q0E=
    users:
    - name: dev
      user:
        tokenFile: ../tokens/dev
    - name: ops
      user:
        token: 12345
    contexts:
    - name: kind-dev
      context: {cluster: kind-dev, user: dev, namespace: shop}
    - name: prod
      context: {cluster: prod, user: ops}
    """

@Suite(.serialized) struct KubeconfigTests {
    @Test func currentOrNamedContextResolves() throws {
        let folder = try Folder()
        defer { folder.remove() }
        let file = try folder.write("config", twoContexts)
        let dev = try KubeConfig.fromKubeconfig(files: [file])
        // Relative paths are relative to the kubeconfig's folder.
        #expect(dev == KubeConfig(host: "127.0.0.1", port: 6443, certificateAuthority: .file(folder.path + "/pki/ca.crt"),
                                  tokenFile: folder.path + "/../tokens/dev", namespace: "shop",
                                  source: "kubeconfig \(file), context kind-dev"))
        // IPv6 in brackets, inline CA kept in memory, a token YAML would read as a number.
        let prod = try KubeConfig.fromKubeconfig(files: [file], context: "prod")
        #expect(prod == KubeConfig(host: "fd00::1", port: 443, certificateAuthority: .bytes(Array("CA".utf8)), token: "12345",
                                   source: "kubeconfig \(file), context prod"))
    }

    @Test func aKubeconfigListMergesFirstWins() throws {
        let folder = try Folder()
        defer { folder.remove() }
        let first = try folder.write("first", """
            current-context: mine
            contexts:
            - {name: mine, context: {cluster: local, user: me}}
            users:
            - {name: me, user: {token: first-token}}
            """)
        let second = try folder.write("second", twoContexts + """

            - name: mine
              context: {cluster: prod, user: ops}
            """)
        // The first file's context wins, and the cluster it names is defined in neither.
        #expect(throws: KubeError("kubeconfig \(first): context \"mine\" names cluster \"local\", which is not defined")) {
            try KubeConfig.fromKubeconfig(files: [first, second])
        }
        _ = try folder.write("first", """
            current-context: mine
            contexts:
            - {name: mine, context: {cluster: prod, user: me}}
            users:
            - {name: me, user: {token: first-token}}
            """)
        let merged = try KubeConfig.fromKubeconfig(files: [first, second])
        #expect(merged.source == "kubeconfig \(first), context mine")
        #expect(merged.host == "fd00::1" && merged.token == "first-token")
    }

    @Test func theFlagWinsOverKUBECONFIGWhichWinsOverTheCluster() throws {
        let folder = try Folder()
        defer { folder.remove() }
        let flag = try folder.write("flag", twoContexts)
        let listed = try folder.write("listed", twoContexts.replacingOccurrences(of: "current-context: kind-dev", with: "current-context: prod"))
        let account = folder.path + "/sa"
        try FileManager.default.createDirectory(atPath: account, withIntermediateDirectories: true)
        try "t".write(toFile: account + "/token", atomically: true, encoding: .utf8)
        let inCluster = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let environment = inCluster.merging(["KUBECONFIG": folder.path + "/missing:" + listed]) { $1 }
        #expect(try KubeConfig.resolve(kubeconfig: flag, environment: environment, serviceAccountDirectory: account).source
                == "kubeconfig \(flag), context kind-dev")
        #expect(try KubeConfig.resolve(kubeconfig: nil, environment: environment, serviceAccountDirectory: account).source
                == "kubeconfig \(listed), context prod")
        #expect(try KubeConfig.resolve(kubeconfig: nil, context: "kind-dev", environment: environment, serviceAccountDirectory: account).host
                == "127.0.0.1")
        #expect(try KubeConfig.resolve(kubeconfig: nil, environment: inCluster, serviceAccountDirectory: account).source == "in-cluster")
        #expect(throws: KubeError("no Kubernetes API server configured: give --kubeconfig, set KUBECONFIG, or run in a pod (KUBERNETES_SERVICE_HOST is not set)")) {
            try KubeConfig.resolve(kubeconfig: nil, environment: [:])
        }
        #expect(throws: KubeError("KUBECONFIG names no file that exists: /nonexistent/a:/nonexistent/b")) {
            try KubeConfig.resolve(kubeconfig: nil, environment: ["KUBECONFIG": "/nonexistent/a:/nonexistent/b"])
        }
        #expect(throws: KubeError("cannot read kubeconfig /nonexistent/config")) {
            try KubeConfig.resolve(kubeconfig: "/nonexistent/config", environment: environment)
        }
    }

    @Test func badFilesSayWhichFileAndWhatIsWrong() throws {
        let folder = try Folder()
        defer { folder.remove() }
        let file = folder.path + "/config"
        func error(_ text: String, context: String? = nil) throws -> String {
            try folder.write("config", text)
            do {
                _ = try KubeConfig.fromKubeconfig(files: [file], context: context)
                return "no error"
            } catch {
                return error.message
            }
        }
        func config(cluster: String = "server: https://h:6443", user: String = "token: t") -> String {
            """
            current-context: c
            clusters: [{name: k, cluster: {\(cluster)}}]
            users: [{name: u, user: {\(user)}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            """
        }
        #expect(try error(config()) == "no error")
        #expect(try error("clusters: [a\n b: c") .hasPrefix("kubeconfig \(file): "))
        #expect(try error("- a list") == "kubeconfig \(file): not a mapping of clusters, users and contexts")
        #expect(try error("clusters: {}") == "kubeconfig \(file): clusters is not a list")
        #expect(try error("clusters: [{cluster: {server: https://h}}]") == "kubeconfig \(file): clusters[0] has no name")
        #expect(try error("users: [{name: u}]") == "kubeconfig \(file): users[0] (\"u\") has no user mapping")
        #expect(try error("") == "kubeconfig \(file): current-context is not set and no context was named")
        #expect(try error(config(), context: "other") == "kubeconfig \(file): context \"other\" not found (contexts: \"c\")")
        #expect(try error("current-context: c\ncontexts: [{name: c, context: {user: u}}]") == "kubeconfig \(file): context \"c\" names no cluster")
        #expect(try error("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]")
                == "kubeconfig \(file): context \"c\" names cluster \"k\", which is not defined")
        #expect(try error(config(cluster: "certificate-authority: ca")) == "kubeconfig \(file): cluster \"k\" has no server")
        #expect(try error(config(cluster: "server: http://h:8080")) == "kubeconfig \(file): cluster \"k\": server \"http://h:8080\" must be https://")
        #expect(try error(config(cluster: "server: h:6443")) == "kubeconfig \(file): cluster \"k\": server \"h:6443\": unsupported URL \"h:6443\": want http:// or https://")
        #expect(try error(config(cluster: "server: https://rancher/k8s/clusters/c-1"))
                == "kubeconfig \(file): cluster \"k\": server \"https://rancher/k8s/clusters/c-1\" has a path, which is not supported")
        #expect(try error(config(cluster: "server: https://h, insecure-skip-tls-verify: true"))
                == "kubeconfig \(file): cluster \"k\" sets insecure-skip-tls-verify, which tandem refuses: give certificate-authority or certificate-authority-data")
        #expect(try error(config(cluster: "server: https://h, certificate-authority-data: not*base64"))
                == "kubeconfig \(file): cluster \"k\": certificate-authority-data is not base64")
        #expect(try error(config(user: "exec: {command: aws}"))
                == "kubeconfig \(file): user \"u\" gets its credentials from a plugin (exec), which tandem does not run: use a token, tokenFile or client certificate")
        #expect(try error(config(user: "client-certificate: c.crt"))
                == "kubeconfig \(file): user \"u\" has client-certificate but no client-key")
        #expect(try error(config(user: "username: admin, password: x"))
                == "kubeconfig \(file): user \"u\" uses a username and password, which Kubernetes no longer accepts: use a token, tokenFile or client certificate")
        #expect(try error(config(user: "token: ''"))
                == "kubeconfig \(file): user \"u\" has no credentials: set token, tokenFile, or client-certificate and client-key")
    }

    @Test func clientCertificatesAuthenticateAgainstTheServer() async throws {
        // A server that verifies client certificates (and so wants no token), like kind's.
        let pki = try TestPKI()
        defer { pki.remove() }
        let serving = try pki.issue(commonName: "kube-apiserver", into: "apiserver")
        let admin = try pki.issue(commonName: "kubernetes-admin", into: "admin")
        let server = try await FakeKubeAPIServer(certificateFile: serving + "/tls.crt", keyFile: serving + "/tls.key", clientCAFile: pki.caCertificate)
        let group = try EventLoopGroup(threads: 1)
        let folder = try Folder()
        defer { folder.remove() }
        func data(_ path: String) throws -> String { Base64.encode(try readFile(path)) }
        // As kind writes it: everything inline.
        let inline = try folder.write("inline", """
            current-context: kind
            clusters: [{name: kind, cluster: {server: "https://127.0.0.1:\(server.port)", certificate-authority-data: \(try data(pki.caCertificate))}}]
            users: [{name: admin, user: {client-certificate-data: \(try data(admin + "/tls.crt")), client-key-data: \(try data(admin + "/tls.key"))}}]
            contexts: [{name: kind, context: {cluster: kind, user: admin}}]
            """)
        // As kubeadm can write it: files.
        let files = try folder.write("files", """
            current-context: kind
            clusters: [{name: kind, cluster: {server: "https://127.0.0.1:\(server.port)", certificate-authority: \(pki.caCertificate)}}]
            users: [{name: admin, user: {client-certificate: \(admin)/tls.crt, client-key: \(admin)/tls.key}}]
            contexts: [{name: kind, context: {cluster: kind, user: admin}}]
            """)
        for file in [inline, files] {
            let config = try KubeConfig.resolve(kubeconfig: file, environment: [:])
            let client = try KubeClient(config: config, loop: group.next())
            #expect(try await client.version() == KubernetesVersion(major: 1, minor: 28, patch: 4), "\(file)")
            let created = try await client.create("/api/v1/namespaces/shop/secrets", ["metadata": ["name": .string(file.hasSuffix("inline") ? "a" : "b")]])
            #expect(created["metadata"]?["namespace"] == "shop")
        }
        // Without the certificate the handshake fails.
        var anonymous = try KubeConfig.resolve(kubeconfig: inline, environment: [:])
        (anonymous.clientCertificate, anonymous.clientKey) = (nil, nil)
        await #expect(throws: KubeError.self) { try await KubeClient(config: anonymous, loop: group.next()).version() }
        // A key that is not the certificate's is refused before any request.
        var mismatched = try KubeConfig.resolve(kubeconfig: files, environment: [:])
        mismatched.clientKey = .file(serving + "/tls.key")
        #expect { try KubeClient(config: mismatched, loop: group.next()) } throws: { error in
            "\(error)".hasPrefix("cannot use the TLS settings from kubeconfig \(files), context kind: ") && "\(error)".contains("key")
        }
        await server.stop()
        group.shutdown()
    }
}
