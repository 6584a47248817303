import Document
import Net

/// A kubeconfig file as kubectl reads it: named clusters, users and contexts, and the current
/// context. Each entry remembers its file, because relative paths in it are relative to that
/// file's folder and errors should name the file to fix.
struct Kubeconfig {
    struct Entry {
        let fields: JSON
        let file: String
    }

    var files: [String] = []
    var currentContext: String?
    var clusters: [String: Entry] = [:]
    var users: [String: Entry] = [:]
    var contexts: [String: Entry] = [:]

    static func parse(_ bytes: [UInt8], file: String) throws(KubeError) -> Kubeconfig {
        let root: JSON
        do {
            root = try YAMLReader.read(bytes).first?.value ?? .null
        } catch {
            throw KubeError("kubeconfig \(file): \(error)")
        }
        var config = Kubeconfig(files: [file])
        if root.isNull { return config }  // an empty file is an empty config, as for kubectl
        guard root.objectValue != nil else { throw KubeError("kubeconfig \(file): not a mapping of clusters, users and contexts") }
        config.currentContext = text(root["current-context"]).flatMap { $0.isEmpty ? nil : $0 }
        config.clusters = try entries(root, "clusters", field: "cluster", file: file)
        config.users = try entries(root, "users", field: "user", file: file)
        config.contexts = try entries(root, "contexts", field: "context", file: file)
        return config
    }

    /// kubectl's merge of a `KUBECONFIG` list: the first file to set a name or the current
    /// context wins.
    static func merged(_ configs: [Kubeconfig]) -> Kubeconfig {
        var result = Kubeconfig()
        for config in configs {
            result.files += config.files
            result.currentContext = result.currentContext ?? config.currentContext
            result.clusters.merge(config.clusters) { first, _ in first }
            result.users.merge(config.users) { first, _ in first }
            result.contexts.merge(config.contexts) { first, _ in first }
        }
        return result
    }

    func resolve(context requested: String?) throws(KubeError) -> KubeConfig {
        let origin = "kubeconfig " + files.joined(separator: ":")
        guard let name = requested ?? currentContext else {
            throw KubeError("\(origin): current-context is not set and no context was named")
        }
        guard let context = contexts[name] else {
            let known = contexts.keys.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            throw KubeError("\(origin): context \"\(name)\" not found (contexts: \(known.isEmpty ? "none" : known))")
        }
        let contextPlace = "kubeconfig \(context.file): context \"\(name)\""
        guard let clusterName = Self.text(context.fields["cluster"]), !clusterName.isEmpty else {
            throw KubeError("\(contextPlace) names no cluster")
        }
        guard let userName = Self.text(context.fields["user"]), !userName.isEmpty else {
            throw KubeError("\(contextPlace) names no user")
        }
        guard let cluster = clusters[clusterName] else { throw KubeError("\(contextPlace) names cluster \"\(clusterName)\", which is not defined") }
        guard let user = users[userName] else { throw KubeError("\(contextPlace) names user \"\(userName)\", which is not defined") }

        var config = try Self.server(cluster, name: clusterName)
        try Self.credentials(user, name: userName, into: &config)
        config.namespace = Self.text(context.fields["namespace"]).flatMap { $0.isEmpty ? nil : $0 }
        config.source = "kubeconfig \(context.file), context \(name)"
        return config
    }

    // MARK: Clusters and users

    private static func server(_ cluster: Entry, name: String) throws(KubeError) -> KubeConfig {
        let place = "kubeconfig \(cluster.file): cluster \"\(name)\""
        let fields = cluster.fields
        for unsupported in ["tls-server-name", "proxy-url"] where fields[unsupported] != nil {
            throw KubeError("\(place): \(unsupported) is not supported")
        }
        if fields["insecure-skip-tls-verify"]?.boolValue == true {
            throw KubeError("\(place) sets insecure-skip-tls-verify, which tandem refuses: give certificate-authority or certificate-authority-data")
        }
        guard let server = text(fields["server"]), !server.isEmpty else { throw KubeError("\(place) has no server") }
        let url: HTTPClientRequest
        do {
            url = try HTTPClientRequest(url: server)
        } catch {
            throw KubeError("\(place): server \"\(server)\": \(error)")
        }
        guard url.isTLS else { throw KubeError("\(place): server \"\(server)\" must be https://") }
        guard url.target == "/" else { throw KubeError("\(place): server \"\(server)\" has a path, which is not supported") }
        return KubeConfig(host: url.host, port: url.port,
                          certificateAuthority: try pem(fields, "certificate-authority", in: cluster, place: place))
    }

    private static func credentials(_ user: Entry, name: String, into config: inout KubeConfig) throws(KubeError) {
        let place = "kubeconfig \(user.file): user \"\(name)\""
        let fields = user.fields
        if fields["exec"] != nil || fields["auth-provider"] != nil {
            throw KubeError("\(place) gets its credentials from a plugin (\(fields["exec"] != nil ? "exec" : "auth-provider")), which tandem does not run: use a token, tokenFile or client certificate")
        }
        if fields["username"] != nil || fields["password"] != nil {
            throw KubeError("\(place) uses a username and password, which Kubernetes no longer accepts: use a token, tokenFile or client certificate")
        }
        let certificate = try pem(fields, "client-certificate", in: user, place: place)
        let key = try pem(fields, "client-key", in: user, place: place)
        if (certificate == nil) != (key == nil) {
            throw KubeError("\(place) has \(certificate == nil ? "client-key but no client-certificate" : "client-certificate but no client-key")")
        }
        // As client-go: an inline token wins over a token file.
        let token = text(fields["token"]).flatMap { $0.isEmpty ? nil : $0 }
        let tokenFile = token == nil ? text(fields["tokenFile"]).flatMap { $0.isEmpty ? nil : path($0, relativeTo: user.file) } : nil
        guard certificate != nil || token != nil || tokenFile != nil else {
            throw KubeError("\(place) has no credentials: set token, tokenFile, or client-certificate and client-key")
        }
        config.clientCertificate = certificate
        config.clientKey = key
        config.token = token
        config.tokenFile = tokenFile
    }

    /// `NAME-data` (base64 PEM, kept in memory), else `NAME` (a file), else nil.
    private static func pem(_ fields: JSON, _ name: String, in entry: Entry, place: String) throws(KubeError) -> PEMSource? {
        if let data = text(fields[name + "-data"]), !data.isEmpty {
            guard let bytes = Base64.decode(String(data.filter { !$0.isWhitespace })) else {
                throw KubeError("\(place): \(name)-data is not base64")
            }
            return .bytes(bytes)
        }
        if let file = text(fields[name]), !file.isEmpty { return .file(path(file, relativeTo: entry.file)) }
        return nil
    }

    // MARK: Reading

    private static func entries(_ root: JSON, _ list: String, field: String, file: String) throws(KubeError) -> [String: Entry] {
        guard let value = root[list], !value.isNull else { return [:] }
        guard let items = value.arrayValue else { throw KubeError("kubeconfig \(file): \(list) is not a list") }
        var result: [String: Entry] = [:]
        for (index, item) in items.enumerated() {
            guard let name = text(item["name"]), !name.isEmpty else { throw KubeError("kubeconfig \(file): \(list)[\(index)] has no name") }
            guard let fields = item[field], fields.objectValue != nil else {
                throw KubeError("kubeconfig \(file): \(list)[\(index)] (\"\(name)\") has no \(field) mapping")
            }
            if result[name] == nil { result[name] = Entry(fields: fields, file: file) }
        }
        return result
    }

    /// A scalar as text: YAML reads `token: 12345` as a number, but it is still the token.
    private static func text(_ value: JSON?) -> String? {
        value?.stringValue ?? value?.numberText
    }

    /// Relative paths in a kubeconfig are relative to the folder of the file that holds them.
    private static func path(_ path: String, relativeTo file: String) -> String {
        guard !path.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }
}
