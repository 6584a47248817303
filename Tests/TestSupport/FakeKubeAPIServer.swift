import Document
import Net
import Synchronization

/// An in-memory Kubernetes API server over TLS on loopback, for tests of the Kube client and
/// what is built on it. It follows the real server where tests can tell: bearer-token auth
/// (401), `Status` bodies for 404 NotFound, 409 AlreadyExists and 409 Conflict, a global
/// resourceVersion bumped on every write, server-set uid and creationTimestamp, RFC 7386 merge
/// patch with the resourceVersion precondition, and `GET /version`.
///
/// Serves `/version`, namespaced Secrets (`/api/v1/namespaces/NS/secrets[/NAME]`) and
/// MutatingWebhookConfigurations (`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations[/NAME]`).
public final class FakeKubeAPIServer: Sendable {
    public let token: String
    private let group: EventLoopGroup
    private let server: HTTPServer
    private let store: Store

    /// Shared by the server object and its route handler.
    final class Store: Sendable {
        let state: Mutex<State>
        init(_ state: State) { self.state = Mutex(state) }
    }

    struct State {
        var objects: [String: JSON] = [:]
        var resourceVersion = 100
        var version: JSON
        /// Method and path of every request, in order.
        var log: [String] = []
        /// Actions run right before the next request with a given method is handled, to stage
        /// races: another replica's create, another writer's patch.
        var beforeNext: [String: [@Sendable () -> Void]] = [:]
    }

    public init(gitVersion: String = "v1.28.4", certificateFile: String, keyFile: String, token: String = "test-token") async throws {
        self.token = token
        let version: JSON = [
            "major": "1", "minor": .string(gitVersion.split(separator: ".").dropFirst().first.map(String.init) ?? "0"),
            "gitVersion": .string(gitVersion), "platform": "linux/amd64",
        ]
        let store = Store(State(version: version))
        self.store = store
        group = try EventLoopGroup(threads: 1)
        var routes = HTTPRoutes()
        let handler: HTTPHandler = { request in Self.handle(request, token: token, store: store) }
        for method in [HTTPMethod.get, .post, .patch, .put, .delete] {
            routes.add(method, "/*", handler)
        }
        let tls = try TLSContext(.server(certificateFile: certificateFile, keyFile: keyFile))
        server = HTTPServer(group: group, configuration: HTTPServerConfiguration(tls: tls), routes: routes)
        try await server.start()
    }

    public var port: Int { server.port }

    public func stop() async {
        await server.shutdown(gracePeriod: .milliseconds(100))
        group.shutdown()
    }

    /// The stored object at an API path, as the server would return it.
    public func object(_ path: String) -> JSON? { store.state.withLock { $0.objects[path] } }

    /// Stores an object directly (as if made by someone else), setting its server fields.
    @discardableResult
    public func seed(_ collectionPath: String, _ object: JSON) -> JSON {
        store.state.withLock { state in
            let name = object["metadata"]?["name"]?.stringValue ?? ""
            return Self.write(&state, path: collectionPath + "/" + name, object: object)
        }
    }

    /// `METHOD path` of every request served.
    public var requests: [String] { store.state.withLock { $0.log } }

    /// Runs `action` (as another client would act) right before the next `method` request.
    public func beforeNext(_ method: HTTPMethod, _ action: @escaping @Sendable () -> Void) {
        store.state.withLock { $0.beforeNext[method.rawValue, default: []].append(action) }
    }

    // MARK: Handling

    private static func handle(_ request: HTTPRequest, token: String, store: Store) -> HTTPResponse {
        let path = String(request.path)
        let actions = store.state.withLock { state in
            state.log.append("\(request.method) \(path)")
            defer { state.beforeNext[request.method.rawValue] = nil }
            return state.beforeNext[request.method.rawValue] ?? []
        }
        for action in actions { action() }
        guard request.headers["Authorization"] == "Bearer \(token)" else {
            return status(401, reason: "Unauthorized", message: "Unauthorized")
        }
        if path == "/version", request.method == .get {
            return json(200, store.state.withLock { $0.version })
        }
        guard let route = Route(path) else {
            return status(404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        return store.state.withLock { state -> HTTPResponse in
            switch (request.method, route.name) {
            case (.get, let name?):
                guard let object = state.objects[path] else { return notFound(route, name) }
                return json(200, object)
            case (.post, nil):
                guard let object = try? JSONReader.parse(request.body), object.objectValue != nil else {
                    return status(400, reason: "BadRequest", message: "the body is not a JSON object")
                }
                guard let name = object["metadata"]?["name"]?.stringValue, !name.isEmpty else {
                    return status(422, reason: "Invalid", message: "\(route.kind) \"\" is invalid: metadata.name: Required value: name or generateName is required")
                }
                let objectPath = path + "/" + name
                if state.objects[objectPath] != nil {
                    return status(409, reason: "AlreadyExists", message: "\(route.resource) \"\(name)\" already exists",
                                  details: ["name": .string(name), "kind": .string(route.resource)])
                }
                return json(201, write(&state, path: objectPath, object: object))
            case (.patch, let name?):
                guard request.headers["Content-Type"] == "application/merge-patch+json" else {
                    return status(415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
                }
                guard let current = state.objects[path] else { return notFound(route, name) }
                guard let patch = try? JSONReader.parse(request.body) else {
                    return status(400, reason: "BadRequest", message: "error decoding patch")
                }
                if let wanted = patch["metadata"]?["resourceVersion"]?.stringValue,
                   wanted != current["metadata"]?["resourceVersion"]?.stringValue {
                    return status(409, reason: "Conflict", message: "Operation cannot be fulfilled on \(route.resource) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
                                  details: ["name": .string(name), "kind": .string(route.resource)])
                }
                return json(200, write(&state, path: path, object: mergePatch(current, patch)))
            default:
                return status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
            }
        }
    }

    /// Sets the fields the server owns and bumps the global resourceVersion.
    private static func write(_ state: inout State, path: String, object: JSON) -> JSON {
        state.resourceVersion += 1
        var object = object.objectValue ?? JSONObject()
        var metadata = object["metadata"]?.objectValue ?? JSONObject()
        let previous = state.objects[path]?["metadata"]
        metadata["uid"] = previous?["uid"] ?? .string("00000000-0000-4000-8000-\(String(state.resourceVersion).leftPadded(12))")
        metadata["resourceVersion"] = .string(String(state.resourceVersion))
        metadata["creationTimestamp"] = previous?["creationTimestamp"] ?? "2026-11-28T00:00:00Z"
        object["metadata"] = .object(metadata)
        state.objects[path] = .object(object)
        return .object(object)
    }

    /// RFC 7386: objects merge member by member, null deletes, anything else replaces.
    public static func mergePatch(_ target: JSON, _ patch: JSON) -> JSON {
        guard let patchObject = patch.objectValue else { return patch }
        var result = target.objectValue ?? JSONObject()
        for (key, value) in patchObject.members {
            if value.isNull {
                result[key] = nil
            } else {
                result[key] = mergePatch(result[key] ?? .null, value)
            }
        }
        return .object(result)
    }

    private struct Route {
        let resource: String
        let kind: String
        let name: String?

        init?(_ path: String) {
            let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
            if parts.count >= 5, parts.count <= 6, parts[0] == "api", parts[1] == "v1", parts[2] == "namespaces", parts[4] == "secrets" {
                (resource, kind, name) = ("secrets", "Secret", parts.count == 6 ? parts[5] : nil)
            } else if parts.count >= 4, parts.count <= 5, parts[0] == "apis", parts[1] == "admissionregistration.k8s.io",
                      parts[2] == "v1", parts[3] == "mutatingwebhookconfigurations" {
                (resource, kind, name) = ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", parts.count == 5 ? parts[4] : nil)
            } else {
                return nil
            }
            if name?.isEmpty == true { return nil }
        }
    }

    private static func notFound(_ route: Route, _ name: String) -> HTTPResponse {
        status(404, reason: "NotFound", message: "\(route.resource) \"\(name)\" not found",
               details: ["name": .string(name), "kind": .string(route.resource)])
    }

    /// A `Status` body exactly as the apiserver writes one.
    static func status(_ code: Int, reason: String, message: String, details: JSON? = nil) -> HTTPResponse {
        var object = JSONObject([
            ("kind", "Status"), ("apiVersion", "v1"), ("metadata", .object(JSONObject())), ("status", "Failure"),
            ("message", .string(message)), ("reason", .string(reason)),
        ])
        if let details { object["details"] = details }
        object["code"] = .integer(code)
        return json(code, .object(object))
    }

    static func json(_ code: Int, _ value: JSON) -> HTTPResponse {
        HTTPResponse(status: code, headers: ["Content-Type": "application/json", "Cache-Control": "no-cache, private"],
                     body: JSONWriter.write(value))
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
