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
    /// 410 Gone: a resourceVersion or continue token older than the server still keeps.
    public var isExpired: Bool { status == 410 }
}

/// One page of a list: `items` (with `kind` and `apiVersion` filled in from the list, as watch
/// events carry them), the collection's resourceVersion, and the token for the next page.
public struct KubeList: Sendable, Equatable {
    public var items: [JSON]
    public var resourceVersion: String
    /// Nil on the last page.
    public var continueToken: String?

    public init(items: [JSON], resourceVersion: String, continueToken: String?) {
        self.items = items
        self.resourceVersion = resourceVersion
        self.continueToken = continueToken
    }

    /// Reads a list response (`PodList`, `EndpointSliceList`, …). The real server leaves `kind`
    /// and `apiVersion` out of list items; they are put back so that an object reads the same
    /// whether it came from a list or a watch.
    public init(_ list: JSON) throws(KubeError) {
        guard let version = list["metadata"]?["resourceVersion"]?.stringValue, let items = list["items"],
              let array = items.arrayValue ?? (items.isNull ? [] : nil) else {
            throw KubeError("not a list: \(String(decoding: JSONWriter.write(list).prefix(200), as: UTF8.self))")
        }
        let kind = list["kind"]?.stringValue.flatMap { $0.hasSuffix("List") ? String($0.dropLast(4)) : nil }
        let apiVersion = list["apiVersion"]
        self.items = array.map { item -> JSON in
            guard let kind, let apiVersion, let object = item.objectValue, object["kind"] == nil else { return item }
            return .object(JSONObject([("kind", .string(kind)), ("apiVersion", apiVersion)] + object.members.map { ($0.0, $0.1) }))
        }
        resourceVersion = version
        let next = list["metadata"]?["continue"]?.stringValue
        continueToken = next?.isEmpty == false ? next : nil
    }
}

/// A Kubernetes API client over Net: JSON objects in and out, one request per call, and watch
/// streams decoded as they arrive. Safe to share: several informers may use one client.
public final class KubeClient: Sendable {
    public let config: KubeConfig
    private let http: HTTPClient

    /// `timeout` bounds connecting and waiting for a response head; a watch's body may then
    /// stay quiet until its own `timeoutSeconds` (and a margin) have passed.
    public init(config: KubeConfig, loop: EventLoop, timeout: Duration = .seconds(10)) throws(KubeError) {
        self.config = config
        let tls: TLSContext
        do {
            tls = try TLSContext(.client(trustedCA: config.certificateAuthority, certificate: config.clientCertificate,
                                         key: config.clientKey))
        } catch {
            throw KubeError("cannot use the TLS settings from \(config.source.isEmpty ? "the configuration" : config.source): \(error)")
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

    /// Replaces the object (PUT). With `metadata.resourceVersion` set, the server refuses with
    /// 409 Conflict if the object changed since that version was read.
    public func update(_ path: String, _ object: JSON) async throws(KubeError) -> JSON {
        try await call(.put, path, body: object, contentType: "application/json")
    }

    /// RFC 7386 merge patch. Putting `metadata.resourceVersion` in the patch makes it fail with
    /// 409 Conflict if the object changed since it was read.
    public func mergePatch(_ path: String, _ patch: JSON) async throws(KubeError) -> JSON {
        try await call(.patch, path, body: patch, contentType: "application/merge-patch+json")
    }

    /// Deletes the object; returns what the server answers (a `Status`, or the object when its
    /// deletion is graceful). A missing object is an error with `isNotFound`.
    @discardableResult
    public func delete(_ path: String) async throws(KubeError) -> JSON {
        try await call(.delete, path)
    }

    /// One page of a collection (`limit`/`continue`), optionally filtered by labels
    /// (`app=web,tier!=db`). A `continue` token too old to use fails with HTTP 410 (`isExpired`).
    public func list(_ path: String, limit: Int? = nil, continue token: String? = nil,
                     labelSelector: String? = nil) async throws(KubeError) -> KubeList {
        var query: [(String, String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let limit { query.append(("limit", String(limit))) }
        if let token { query.append(("continue", token)) }
        let list = try await call(.get, path, query: query)
        do {
            return try KubeList(list)
        } catch {
            throw KubeError("GET \(path): \(error.message)")
        }
    }

    /// Watches a collection from `resourceVersion` (nil: from now, after synthetic ADDED events
    /// for what exists). The server ends the stream after `timeoutSeconds`; the stream fails if
    /// the connection breaks or stays silent well past that. An expired resourceVersion arrives
    /// as an `.error(code: 410, …)` event, not as a failure. Ending the iteration (or cancelling
    /// the task) closes the connection.
    public func watch(_ path: String, resourceVersion: String?, timeoutSeconds: Int, allowBookmarks: Bool = true,
                      labelSelector: String? = nil) async throws(KubeError) -> KubeWatch {
        var query: [(String, String)] = [("watch", "1")]
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if allowBookmarks { query.append(("allowWatchBookmarks", "true")) }
        if let resourceVersion { query.append(("resourceVersion", resourceVersion)) }
        query.append(("timeoutSeconds", String(timeoutSeconds)))
        var request = try makeRequest(.get, path, query: query)
        request.bodyReadTimeout = .seconds(timeoutSeconds) + Self.watchSilenceMargin
        let response: HTTPStreamingResponse
        do {
            response = try await http.stream(request)
        } catch {
            throw KubeError("watch \(path): \(error)")
        }
        guard response.head.status == 200 else {
            var body: [UInt8] = []
            do {
                for try await chunk in response.body where body.count < 65536 { body += chunk }
            } catch {
                // The status says enough.
            }
            throw Self.failure(.get, "watch \(path)", status: response.head.status, body: body)
        }
        return KubeWatch(path: path, body: response.body)
    }

    /// How long past its `timeoutSeconds` a silent watch is given before it counts as broken.
    static let watchSilenceMargin = Duration.seconds(15)

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

    private func call(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSON? = nil,
                      contentType: String? = nil) async throws(KubeError) -> JSON {
        var request = try makeRequest(method, path, query: query, contentType: contentType)
        request.body = body.map { JSONWriter.write($0) } ?? []
        let response: HTTPClientResponse
        do {
            response = try await http.send(request)
        } catch {
            throw KubeError("\(method) \(path): \(error)")
        }
        guard (200..<300).contains(response.status) else {
            throw Self.failure(method, "\(method) \(path)", status: response.status, body: response.body)
        }
        guard let json = try? JSONReader.parse(response.body) else { throw KubeError("\(method) \(path): the response is not JSON") }
        return json
    }

    private func makeRequest(_ method: HTTPMethod, _ path: String, query: [(String, String)],
                             contentType: String? = nil) throws(KubeError) -> HTTPClientRequest {
        var headers: HTTPHeaders = ["Accept": "application/json", "User-Agent": "tandem"]
        if let token = try config.bearerToken() { headers.add("Authorization", "Bearer \(token)") }
        if let contentType { headers.add("Content-Type", contentType) }
        let target = query.isEmpty ? path : path + "?" + URLQuery.encode(query)
        return HTTPClientRequest(method: method, isTLS: true, host: config.host, port: config.port, target: target, headers: headers)
    }

    /// The error for a non-2xx answer: a `Status` body says why; anything else is shown as text.
    private static func failure(_ method: HTTPMethod, _ what: String, status: Int, body: [UInt8]) -> KubeError {
        let json = try? JSONReader.parse(body)
        let message = json?["message"]?.stringValue ?? String(decoding: body.prefix(200), as: UTF8.self)
        return KubeError("\(what): \(message)", status: status, reason: json?["reason"]?.stringValue)
    }
}

/// The events of one watch, decoded as the body arrives (see `KubeClient.watch`). Iterate it
/// once; errors are `KubeError`s.
public struct KubeWatch: AsyncSequence, Sendable {
    public typealias Element = WatchEvent
    let path: String
    let body: AsyncThrowingStream<[UInt8], Error>

    public struct AsyncIterator: AsyncIteratorProtocol {
        let path: String
        var body: AsyncThrowingStream<[UInt8], Error>.AsyncIterator
        var decoder = WatchStreamDecoder()
        /// Decoded events not yet returned, last first.
        var ready: [WatchEvent] = []

        public mutating func next() async throws -> WatchEvent? {
            while ready.isEmpty {
                let chunk: [UInt8]?
                do {
                    chunk = try await body.next()
                } catch {
                    throw KubeError("watch \(path): \(error)")
                }
                do throws(WatchStreamDecoder.Failure) {
                    guard let chunk else {
                        try decoder.finish()
                        return nil
                    }
                    ready = try decoder.feed(chunk).reversed()
                } catch {
                    throw KubeError("watch \(path): \(error)")
                }
            }
            return ready.popLast()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(path: path, body: body.makeAsyncIterator())
    }
}
