import Document
import Kubernetes
import Net

/// A failed API call: the Status the server sent (reason `NotFound`, `AlreadyExists`,
/// `Conflict`…), or a transport or decoding problem (no status).
public struct KubeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int?
    public var reason: String?
    public var message: String

    public init(_ message: String, status: Int? = nil, reason: String? = nil) {
        self.message = message
        self.status = status
        self.reason = reason
    }

    public var description: String {
        status.map { "\(message) (HTTP \($0)\(reason.map { " \($0)" } ?? ""))" } ?? message
    }

    public var isNotFound: Bool { status == 404 }
    public var isAlreadyExists: Bool { status == 409 && reason == "AlreadyExists" }
    public var isConflict: Bool { status == 409 && reason == "Conflict" }
}

/// The start of a Kubernetes API client over Net: JSON objects in and out, one call per method.
public final class KubeClient: Sendable {
    public let config: KubeConfig
    private let http: HTTPClient

    public init(config: KubeConfig, loop: EventLoop, timeout: Duration = .seconds(10)) throws(KubeError) {
        self.config = config
        let tls: TLSContext
        do {
            tls = try TLSContext(.client(trustedCAFile: config.caFile))
        } catch {
            throw KubeError("cannot use the API server's CA \(config.caFile ?? "(system)"): \(error)")
        }
        http = HTTPClient(loop: loop, configuration: HTTPClientConfiguration(
            tls: tls, connectTimeout: timeout, responseTimeout: timeout, limits: HTTPLimits(maxBodyBytes: 64 << 20)))
    }

    // MARK: Generic verbs

    public func get(_ path: String) async throws(KubeError) -> JSON {
        try await call(.get, path)
    }

    public func create(_ path: String, _ object: JSON) async throws(KubeError) -> JSON {
        try await call(.post, path, body: object, contentType: "application/json")
    }

    /// RFC 7386 merge patch. Putting `metadata.resourceVersion` in the patch makes it fail with
    /// 409 Conflict if the object changed since it was read.
    public func mergePatch(_ path: String, _ patch: JSON) async throws(KubeError) -> JSON {
        try await call(.patch, path, body: patch, contentType: "application/merge-patch+json")
    }

    // MARK: Objects this client knows

    /// The server's version, from `GET /version` (`gitVersion`, such as `v1.28.4`).
    public func version() async throws(KubeError) -> KubernetesVersion {
        let info = try await get("/version")
        guard let text = info["gitVersion"]?.stringValue, let version = KubernetesVersion(text) else {
            throw KubeError("GET /version: no usable gitVersion in \(JSONWriter.string(info))")
        }
        return version
    }

    public static func secretPath(namespace: String, name: String? = nil) -> String {
        "/api/v1/namespaces/\(namespace)/secrets" + (name.map { "/\($0)" } ?? "")
    }

    public static func mutatingWebhookConfigurationPath(_ name: String) -> String {
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/\(name)"
    }

    /// The Secret, or nil when there is none.
    public func secret(namespace: String, name: String) async throws(KubeError) -> JSON? {
        do {
            return try await get(Self.secretPath(namespace: namespace, name: name))
        } catch let error where error.isNotFound {
            return nil
        }
    }

    public func createSecret(namespace: String, _ secret: JSON) async throws(KubeError) -> JSON {
        try await create(Self.secretPath(namespace: namespace), secret)
    }

    /// Sets `clientConfig.caBundle` (base64 PEM) on every webhook of the configuration, reading
    /// it first and patching with its resourceVersion; retried when someone else wrote between.
    /// Returns false when it already carried this bundle.
    @discardableResult
    public func setCABundle(mutatingWebhookConfiguration name: String, caBundle: String,
                            attempts: Int = 5) async throws(KubeError) -> Bool {
        let path = Self.mutatingWebhookConfigurationPath(name)
        var attempt = 0
        while true {
            attempt += 1
            let current = try await get(path)
            guard let patch = Self.caBundlePatch(current, caBundle: caBundle) else { return false }
            do {
                _ = try await mergePatch(path, patch)
                return true
            } catch let error where error.isConflict && attempt < attempts {
                continue
            }
        }
    }

    /// The merge patch that puts `caBundle` on every webhook, or nil when nothing changes.
    /// A merge patch replaces lists whole, so the webhooks are sent complete.
    static func caBundlePatch(_ configuration: JSON, caBundle: String) -> JSON? {
        guard let webhooks = configuration["webhooks"]?.arrayValue else { return nil }
        var changed = false
        let updated = webhooks.map { webhook -> JSON in
            guard var object = webhook.objectValue else { return webhook }
            var clientConfig = object["clientConfig"]?.objectValue ?? JSONObject()
            if clientConfig["caBundle"]?.stringValue != caBundle {
                clientConfig["caBundle"] = .string(caBundle)
                changed = true
            }
            object["clientConfig"] = .object(clientConfig)
            return .object(object)
        }
        guard changed else { return nil }
        var metadata = JSONObject()
        if let version = configuration["metadata"]?["resourceVersion"] { metadata["resourceVersion"] = version }
        return .object(JSONObject([("metadata", .object(metadata)), ("webhooks", .array(updated))]))
    }

    // MARK: Transport

    private func call(_ method: HTTPMethod, _ path: String, body: JSON? = nil,
                      contentType: String? = nil) async throws(KubeError) -> JSON {
        var headers: HTTPHeaders = ["Accept": "application/json", "User-Agent": "tandem"]
        if let token = try config.bearerToken() { headers.add("Authorization", "Bearer \(token)") }
        if let contentType { headers.add("Content-Type", contentType) }
        let request = HTTPClientRequest(method: method, isTLS: true, host: config.host, port: config.port, target: path,
                                        headers: headers, body: body.map { JSONWriter.write($0) } ?? [])
        let response: HTTPClientResponse
        do {
            response = try await http.send(request)
        } catch {
            throw KubeError("\(method) \(path): \(error)")
        }
        let json = try? JSONReader.parse(response.body)
        guard (200..<300).contains(response.status) else {
            // A Status body says why; anything else is shown as text.
            let message = json?["message"]?.stringValue ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            throw KubeError("\(method) \(path): \(message)", status: response.status, reason: json?["reason"]?.stringValue)
        }
        guard let json else { throw KubeError("\(method) \(path): the response is not JSON") }
        return json
    }
}
