import Glibc
import Net

/// Where the API server is and how to prove who we are to it.
public struct KubeConfig: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// PEM bundle that signs the API server's certificate; nil trusts the system store.
    public var certificateAuthority: PEMSource?
    /// A client certificate and its key, for clusters that authenticate by certificate (kind,
    /// kubeadm admin configs).
    public var clientCertificate: PEMSource?
    public var clientKey: PEMSource?
    /// Read again before each request: projected service-account tokens are rotated by the
    /// kubelet (about hourly) and an old one stops working.
    public var tokenFile: String?
    /// A fixed bearer token (kubeconfig `token:`), used when there is no token file.
    public var token: String?
    /// The namespace of the pod, or of the kubeconfig context, when known.
    public var namespace: String?
    /// Where this came from, for logs: `in-cluster` or `kubeconfig FILE, context NAME`.
    public var source: String

    public init(host: String, port: Int, certificateAuthority: PEMSource? = nil, clientCertificate: PEMSource? = nil,
                clientKey: PEMSource? = nil, tokenFile: String? = nil, token: String? = nil, namespace: String? = nil,
                source: String = "") {
        self.host = host
        self.port = port
        self.certificateAuthority = certificateAuthority
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.tokenFile = tokenFile
        self.token = token
        self.namespace = namespace
        self.source = source
    }

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The configuration a command uses: the kubeconfig file it was given (`--kubeconfig`), else
    /// the files in `$KUBECONFIG`, else the pod's service account. `context` picks a kubeconfig
    /// context other than the current one.
    public static func resolve(kubeconfig: String?, context: String? = nil, environment: [String: String],
                               serviceAccountDirectory: String = serviceAccountDirectory) throws(KubeError) -> KubeConfig {
        if let kubeconfig, !kubeconfig.isEmpty {
            return try fromKubeconfig(files: [kubeconfig], context: context)
        }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            // As kubectl does: files in the list that do not exist are skipped.
            let files = list.split(separator: ":").map(String.init)
            let present = files.filter { access($0, F_OK) == 0 }
            guard !present.isEmpty else { throw KubeError("KUBECONFIG names no file that exists: \(list)") }
            return try fromKubeconfig(files: present, context: context)
        }
        guard environment["KUBERNETES_SERVICE_HOST"] != nil else {
            throw KubeError("no Kubernetes API server configured: give --kubeconfig, set KUBECONFIG, or run in a pod (KUBERNETES_SERVICE_HOST is not set)")
        }
        return try inCluster(environment: environment, serviceAccountDirectory: serviceAccountDirectory)
    }

    /// The config every pod gets: `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted service
    /// account (`token`, `ca.crt`, `namespace`), as client-go's `rest.InClusterConfig` reads it.
    public static func inCluster(environment: [String: String],
                                 serviceAccountDirectory: String = serviceAccountDirectory) throws(KubeError) -> KubeConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let portText = environment["KUBERNETES_SERVICE_PORT"], !portText.isEmpty else {
            throw KubeError("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
        }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw KubeError("KUBERNETES_SERVICE_PORT \"\(portText)\" is not a port")
        }
        let tokenFile = serviceAccountDirectory + "/token"
        guard access(tokenFile, R_OK) == 0 else { throw KubeError("cannot read the service account token \(tokenFile)") }
        let namespace = (try? readSmallFile(serviceAccountDirectory + "/namespace"))
            .map { String(decoding: $0, as: UTF8.self).trimmingWhitespace }
        return KubeConfig(host: host.trimmingCharacters(in: "[]"), port: port,
                          certificateAuthority: .file(serviceAccountDirectory + "/ca.crt"),
                          tokenFile: tokenFile, namespace: namespace, source: "in-cluster")
    }

    /// Reads kubeconfig files (several merge as kubectl merges a `KUBECONFIG` list: the first
    /// file to define a name wins) and resolves `context`, else the current context.
    public static func fromKubeconfig(files: [String], context: String? = nil) throws(KubeError) -> KubeConfig {
        var parsed: [Kubeconfig] = []
        for file in files {
            let bytes: [UInt8]
            do { bytes = try readSmallFile(file) } catch { throw KubeError("cannot read kubeconfig \(file)") }
            parsed.append(try Kubeconfig.parse(bytes, file: file))
        }
        return try Kubeconfig.merged(parsed).resolve(context: context)
    }

    /// The bearer token for the next request.
    func bearerToken() throws(KubeError) -> String? {
        if let tokenFile {
            do {
                return String(decoding: try readSmallFile(tokenFile), as: UTF8.self).trimmingWhitespace
            } catch {
                throw KubeError("cannot read the token \(tokenFile)")
            }
        }
        return token
    }
}

struct FileReadError: Error {}

func readSmallFile(_ path: String) throws(FileReadError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileReadError() }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw FileReadError() }
        if count == 0 { return bytes }
        bytes += buffer[0..<count]
    }
}

extension String {
    var trimmingWhitespace: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }

    func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}
