import Glibc

/// Where the API server is and how to prove who we are to it.
public struct KubeConfig: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// PEM bundle that signs the API server's certificate; nil trusts the system store.
    public var caFile: String?
    /// Read again before each request: projected service-account tokens are rotated by the
    /// kubelet (about hourly) and an old one stops working.
    public var tokenFile: String?
    /// A fixed bearer token (kubeconfig `token:`), used when there is no token file.
    public var token: String?
    /// The pod's own namespace, when known.
    public var namespace: String?

    public init(host: String, port: Int, caFile: String? = nil, tokenFile: String? = nil, token: String? = nil,
                namespace: String? = nil) {
        self.host = host
        self.port = port
        self.caFile = caFile
        self.tokenFile = tokenFile
        self.token = token
        self.namespace = namespace
    }

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

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
        return KubeConfig(host: host.trimmingCharacters(in: "[]"), port: port, caFile: serviceAccountDirectory + "/ca.crt",
                          tokenFile: tokenFile, namespace: namespace)
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
