import Document
import Net
import Synchronization

/// An in-memory Kubernetes API server over TLS on loopback, for tests of the Kube client and
/// what is built on it. It follows the real server (v1.28, see `../shared/fixtures`) where a
/// client can tell:
///
/// - Resources: pods, services, endpointslices, namespaces, leases, secrets and
///   mutatingwebhookconfigurations, namespaced (`/api/v1/namespaces/NS/pods[/NAME]`) and
///   cluster-scoped (`/api/v1/namespaces/NAME`), and listed across all namespaces
///   (`/api/v1/pods`, `/apis/discovery.k8s.io/v1/endpointslices`).
/// - One global resourceVersion bumped by every write; server-set uid and creationTimestamp;
///   `Status` bodies for 401, 404 NotFound, 409 AlreadyExists and Conflict, 410 Expired.
/// - Verbs: GET, list (`limit`/`continue` with opaque tokens, served from a consistent snapshot
///   at the first page's version; `labelSelector` with `=`, `==`, `!=`, `key`, `!key`), POST
///   (with `generateName`), PUT (the resourceVersion precondition), merge PATCH, DELETE (the
///   DELETED event carries a new resourceVersion).
/// - Watch (`watch=1`/`true`): chunked, one event per chunk, each line ending in `\n`. Without
///   a resourceVersion it starts with synthetic ADDED events for what exists; from a version it
///   replays later events from a bounded history. `allowWatchBookmarks` (on watches that gave a
///   resourceVersion, as the real server's watch cache) gets BOOKMARK events shaped like the
///   real ones: on `bookmark()` and just before `timeoutSeconds` ends the stream cleanly.
///   A version older than the history (see `compact(upTo:)`) gets HTTP 200 and one ERROR event
///   with a 410 `Expired` Status, as the real server sends it.
///
/// Test hooks: `seed`, `remove`, `versions`, `compact(upTo:)`, `bookmark()`, `failNext(_:)`, `stopServing()` /
/// `startServing()` / `restart()` (drops every connection and watch, then listens again on the
/// same port), `beforeNext(_:)` to stage races, and the request log.
public final class FakeKubeAPIServer: Sendable {
    public let token: String
    private let group: EventLoopGroup
    private let serverConfiguration: Mutex<HTTPServerConfiguration>
    private let server = Mutex<HTTPServer?>(nil)
    private let store: Store
    private let requiresToken: Bool

    /// Shared by the server object and its route handler.
    final class Store: Sendable {
        let state: Mutex<State>
        let loop: EventLoop
        init(_ state: State, loop: EventLoop) {
            self.state = Mutex(state)
            self.loop = loop
        }
    }

    struct State {
        var objects: [ObjectKey: JSON] = [:]
        var resourceVersion = 100
        /// Writes after `compactedRevision`, oldest first: what a watch from an older version replays.
        var history: [Change] = []
        var compactedRevision = 100
        var historyLimit: Int
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
        var version: JSON
        /// Method and target of every request, in order.
        var log: [String] = []
        /// Actions run right before the next request with a given method is handled, to stage
        /// races: another replica's create, another writer's patch.
        var beforeNext: [String: [@Sendable () -> Void]] = [:]
        /// Requests still to fail, and how.
        var faults: [Fault] = []
        var generatedNames = 0
    }

    struct ObjectKey: Hashable {
        let resource: String
        let namespace: String
        let name: String
        /// The order of etcd keys, which lists follow.
        var sortKey: String { namespace.isEmpty ? name : namespace + "/" + name }
    }

    struct Change {
        let resourceVersion: Int
        let key: ObjectKey
        /// The object after the change (for a deletion: its last state, with the new version).
        let object: JSON
        let previous: JSON?
        let deleted: Bool
    }

    struct Fault {
        var remaining: Int
        let status: Int
        let pathPrefix: String?
    }

    final class Watcher: Sendable {
        let resource: Resource
        let namespace: String?
        let selector: LabelSelector?
        let bookmarks: Bool
        let writer: HTTPResponseWriter

        init(resource: Resource, namespace: String?, selector: LabelSelector?, bookmarks: Bool, writer: HTTPResponseWriter) {
            self.resource = resource
            self.namespace = namespace
            self.selector = selector
            self.bookmarks = bookmarks
            self.writer = writer
        }

        func matches(_ key: ObjectKey) -> Bool {
            key.resource == resource.plural && (namespace == nil || namespace == key.namespace)
        }
    }

    /// `clientCAFile` makes TLS require and verify client certificates; such a connection is
    /// authenticated by its certificate and needs no token.
    public init(gitVersion: String = "v1.28.4", certificateFile: String, keyFile: String, clientCAFile: String? = nil,
                token: String = "test-token", historyLimit: Int = 1000) async throws {
        self.token = token
        requiresToken = clientCAFile == nil
        group = try EventLoopGroup(threads: 1)
        store = Store(State(historyLimit: historyLimit, version: Self.versionInfo(gitVersion)), loop: group.next())
        let tls = try TLSContext(.server(certificateFile: certificateFile, keyFile: keyFile, clientCAFile: clientCAFile))
        serverConfiguration = Mutex(HTTPServerConfiguration(tls: tls))
        try await startServing()
    }

    public var port: Int { serverConfiguration.withLock { $0.port } }

    /// Starts listening (again), on the port it had before.
    public func startServing() async throws {
        guard server.withLock({ $0 == nil }) else { return }
        var routes = HTTPRoutes()
        let store = self.store, token = requiresToken ? self.token : nil
        let handler: HTTPHandler = { request in Self.handle(request, token: token, store: store) }
        for method in [HTTPMethod.get, .post, .patch, .put, .delete] {
            routes.add(method, "/*", handler)
        }
        let server = HTTPServer(group: group, configuration: serverConfiguration.withLock { $0 }, routes: routes)
        try await server.start()
        serverConfiguration.withLock { $0.port = server.port }
        self.server.withLock { $0 = server }
    }

    /// Closes the listener and every connection at once, watches included, as a crashing API
    /// server would (no final chunk). The objects and the history stay.
    public func stopServing() async {
        guard let server = server.withLock({ $0.take() }) else { return }
        await server.shutdown(gracePeriod: .zero)
        store.state.withLock { $0.watchers = [:] }
    }

    public func restart() async throws {
        await stopServing()
        try await startServing()
    }

    public func stop() async {
        await stopServing()
        group.shutdown()
    }

    // MARK: Test hooks

    /// The stored object at an API path, as the server would return it.
    public func object(_ path: String) -> JSON? {
        guard let route = Route(path), let key = route.key else { return nil }
        return store.state.withLock { $0.objects[key] }
    }

    /// Every state the object at an API path had, oldest first, as far back as the history goes
    /// (a deletion shows as the last state with the deletion's resourceVersion).
    public func versions(_ path: String) -> [JSON] {
        guard let route = Route(path), let key = route.key else { return [] }
        return store.state.withLock { state in state.history.filter { $0.key == key }.map(\.object) }
    }

    /// Stores an object as if someone else had created or replaced it, setting the server's
    /// fields and telling the watchers.
    @discardableResult
    public func seed(_ collectionPath: String, _ object: JSON) -> JSON {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        guard let route = Route(collectionPath + "/" + name), let key = route.key else {
            preconditionFailure("seed: \(collectionPath) is not a collection this fake serves")
        }
        return store.state.withLock { Self.write(&$0, route.resource, key, object, loop: store.loop) }
    }

    /// Deletes an object as someone else would; false when there was none.
    @discardableResult
    public func remove(_ path: String) -> Bool {
        guard let route = Route(path), let key = route.key else { return false }
        return store.state.withLock { Self.delete(&$0, route.resource, key, loop: store.loop) != nil }
    }

    /// The current resourceVersion.
    public var resourceVersion: Int { store.state.withLock { $0.resourceVersion } }

    /// Forgets the history up to `revision`, like an etcd compaction or the fresh watch cache of
    /// a restarted API server: a watch from an older version is told 410 Expired, and so is a
    /// list continued from an older page.
    public func compact(upTo revision: Int) {
        store.state.withLock { state in
            state.compactedRevision = max(state.compactedRevision, revision)
            state.history.removeAll { $0.resourceVersion <= state.compactedRevision }
        }
    }

    /// Sends a BOOKMARK at the current resourceVersion to every watch that asked for them.
    public func bookmark() {
        store.state.withLock { state in
            for watcher in state.watchers.values where watcher.bookmarks {
                Self.send(Self.bookmarkLine(watcher.resource, version: state.resourceVersion), to: watcher.writer, loop: store.loop)
            }
        }
    }

    /// Answers the next `count` requests (whose path starts with `pathPrefix`, if given) with
    /// `status` and a `Status` body, as an overloaded or broken API server would.
    /// What `GET /version` answers from now on, as after a control-plane upgrade.
    public func setVersion(_ gitVersion: String) {
        store.state.withLock { $0.version = Self.versionInfo(gitVersion) }
    }

    private static func versionInfo(_ gitVersion: String) -> JSON {
        [
            "major": "1", "minor": .string(gitVersion.split(separator: ".").dropFirst().first.map(String.init) ?? "0"),
            "gitVersion": .string(gitVersion), "platform": "linux/amd64",
        ]
    }

    public func failNext(_ count: Int, status: Int = 500, pathPrefix: String? = nil) {
        store.state.withLock { $0.faults.append(Fault(remaining: count, status: status, pathPrefix: pathPrefix)) }
    }

    /// Watches open now.
    public var openWatches: Int {
        store.state.withLock { state in state.watchers.values.filter { $0.writer.isOpen }.count }
    }

    /// `METHOD path` of every request served.
    public var requests: [String] { requestTargets.map { String($0[..<($0.firstIndex(of: "?") ?? $0.endIndex)]) } }
    /// `METHOD path?query` of every request served.
    public var requestTargets: [String] { store.state.withLock { $0.log } }

    /// Runs `action` (as another client would act) right before the next `method` request.
    public func beforeNext(_ method: HTTPMethod, _ action: @escaping @Sendable () -> Void) {
        store.state.withLock { $0.beforeNext[method.rawValue, default: []].append(action) }
    }

    // MARK: Handling

    private static func handle(_ request: HTTPRequest, token: String?, store: Store) -> HTTPResponse {
        let path = String(request.path)
        let actions = store.state.withLock { state in
            state.log.append("\(request.method) \(request.head.target)")
            defer { state.beforeNext[request.method.rawValue] = nil }
            return state.beforeNext[request.method.rawValue] ?? []
        }
        for action in actions { action() }
        if let token, request.headers["Authorization"] != "Bearer \(token)" {
            return status(401, reason: "Unauthorized", message: "Unauthorized")
        }
        if let fault = store.state.withLock({ takeFault(&$0, path: path) }) {
            return fault == 503 ? status(503, reason: "ServiceUnavailable", message: "the server is currently unable to handle the request")
                                : status(fault, reason: "InternalError", message: "Internal error occurred: simulated failure")
        }
        if path == "/version", request.method == .get {
            return json(200, store.state.withLock { $0.version })
        }
        guard let route = Route(path) else {
            return status(404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        guard let query = URLQuery.decode(request.query ?? "") else {
            return status(400, reason: "BadRequest", message: "malformed query")
        }
        let parameters = Dictionary(query, uniquingKeysWith: { _, last in last })
        switch (request.method, route.key) {
        case (.get, nil) where ["1", "true"].contains(parameters["watch"]):
            return watch(route, parameters, store: store)
        case (.get, nil):
            return store.state.withLock { list(&$0, route, parameters) }
        case (.get, let key?):
            guard let object = store.state.withLock({ $0.objects[key] }) else { return notFound(route) }
            return json(200, object)
        case (.post, nil):
            return store.state.withLock { create(&$0, route, request.body, loop: store.loop) }
        case (.put, let key?):
            return store.state.withLock { update(&$0, route, key, request.body, loop: store.loop) }
        case (.patch, let key?):
            return store.state.withLock { patch(&$0, route, key, request, loop: store.loop) }
        case (.delete, let key?):
            return store.state.withLock { state in
                guard let deleted = delete(&state, route.resource, key, loop: store.loop) else { return notFound(route) }
                return json(200, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success",
                                  "details": ["name": .string(key.name), "kind": .string(key.resource),
                                              "uid": deleted["metadata"]?["uid"] ?? .null]])
            }
        default:
            return status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
    }

    private static func takeFault(_ state: inout State, path: String) -> Int? {
        guard let index = state.faults.firstIndex(where: { $0.pathPrefix.map(path.hasPrefix) ?? true }) else { return nil }
        state.faults[index].remaining -= 1
        let status = state.faults[index].status
        if state.faults[index].remaining <= 0 { state.faults.remove(at: index) }
        return status
    }

    // MARK: Reads

    private static func list(_ state: inout State, _ route: Route, _ parameters: [String: String]) -> HTTPResponse {
        let selector: LabelSelector?
        do { selector = try parameters["labelSelector"].map(LabelSelector.init) } catch {
            return status(400, reason: "BadRequest", message: "unable to parse requirement: \(error.description)")
        }
        var listVersion = state.resourceVersion
        var after: String?
        if let token = parameters["continue"], !token.isEmpty {
            guard let (version, start) = ContinueToken.decode(token) else {
                return status(400, reason: "BadRequest", message: "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            }
            guard version >= state.compactedRevision else {
                return status(410, reason: "Expired", message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                              metadata: ["continue": .string(ContinueToken.encode(version: -1, start: start))])
            }
            (listVersion, after) = (version, start)
        } else if let text = parameters["resourceVersion"], parameters["resourceVersionMatch"] == "Exact" {
            guard let version = Int(text) else { return status(400, reason: "BadRequest", message: "invalid resourceVersion \(text)") }
            guard version >= state.compactedRevision else {
                return status(410, reason: "Expired", message: "The resourceVersion for the provided list is too old.")
            }
            listVersion = version
        }
        let snapshot = Self.snapshot(state, at: listVersion)
        var matching = snapshot.filter { key, object in
            key.resource == route.resource.plural && (route.namespace == nil || key.namespace == route.namespace)
                && (selector?.matches(object) ?? true)
        }.sorted { $0.key.sortKey < $1.key.sortKey }
        // Within a namespace the token's key is the name, as the real server's is.
        func listKey(_ key: ObjectKey) -> String { route.namespace == nil ? key.sortKey : key.name }
        if let after { matching.removeAll { listKey($0.key) + "\u{0}" <= after } }
        var metadata = JSONObject([("resourceVersion", .string(String(listVersion)))])
        if let limit = parameters["limit"].flatMap({ Int($0) }), limit > 0, matching.count > limit {
            let remaining = matching.count - limit
            matching = Array(matching.prefix(limit))
            metadata["continue"] = .string(ContinueToken.encode(version: listVersion, start: listKey(matching.last!.key) + "\u{0}"))
            if selector == nil { metadata["remainingItemCount"] = .integer(remaining) }
        }
        // Items in a list carry no kind or apiVersion: the list says them once.
        let items = matching.map { _, object -> JSON in
            var item = object.objectValue ?? JSONObject()
            item["kind"] = nil
            item["apiVersion"] = nil
            return .object(item)
        }
        return json(200, .object(JSONObject([
            ("kind", .string(route.resource.kind + "List")), ("apiVersion", .string(route.resource.apiVersion)),
            ("metadata", .object(metadata)), ("items", .array(items)),
        ])))
    }

    /// The objects as they were at `version`: the current ones with later changes undone.
    private static func snapshot(_ state: State, at version: Int) -> [ObjectKey: JSON] {
        var objects = state.objects
        for change in state.history.reversed() where change.resourceVersion > version {
            objects[change.key] = change.previous
        }
        return objects
    }

    private static func watch(_ route: Route, _ parameters: [String: String], store: Store) -> HTTPResponse {
        let selector: LabelSelector?
        do { selector = try parameters["labelSelector"].map(LabelSelector.init) } catch {
            return status(400, reason: "BadRequest", message: "unable to parse requirement: \(error.description)")
        }
        let from = parameters["resourceVersion"].flatMap { $0.isEmpty || $0 == "0" ? nil : $0 }
        if let from, Int(from) == nil {
            return status(400, reason: "BadRequest", message: "resourceVersion: Invalid value: \"\(from)\": must be a number")
        }
        let timeout = parameters["timeoutSeconds"].flatMap { Int($0) }
        // The real server's watch cache serves bookmarks; a watch without a version goes to etcd.
        let bookmarks = parameters["allowWatchBookmarks"] == "true" && parameters["resourceVersion"] != nil
        return HTTPResponse(status: 200, headers: headers) { writer in
            let loop = store.loop
            let watcher = Watcher(resource: route.resource, namespace: route.namespace, selector: selector,
                                  bookmarks: bookmarks, writer: writer)
            let id: Int? = store.state.withLock { state in
                if let from = from.flatMap({ Int($0) }) {
                    guard from >= state.compactedRevision else {
                        send(errorLine(410, reason: "Expired", message: "too old resource version: \(from) (\(state.compactedRevision))"),
                             to: writer, loop: loop)
                        loop.execute { writer.finish() }
                        return nil
                    }
                    for change in state.history where change.resourceVersion > from && watcher.matches(change.key) {
                        if let line = eventLine(change, for: watcher) { send(line, to: writer, loop: loop) }
                    }
                } else {
                    let current = state.objects.filter { watcher.matches($0.key) && (selector?.matches($0.value) ?? true) }
                    for (_, object) in current.sorted(by: { $0.key.sortKey < $1.key.sortKey }) {
                        send(line("ADDED", object), to: writer, loop: loop)
                    }
                }
                state.nextWatcher += 1
                state.watchers[state.nextWatcher] = watcher
                return state.nextWatcher
            }
            guard let id, let timeout else { return }
            loop.execute {
                loop.schedule(after: .seconds(timeout)) {
                    let (ended, version) = store.state.withLock { ($0.watchers.removeValue(forKey: id), $0.resourceVersion) }
                    guard let ended else { return }
                    if ended.bookmarks { send(bookmarkLine(ended.resource, version: version), to: writer, loop: loop) }
                    loop.execute { writer.finish() }
                }
            }
        }
    }

    // MARK: Writes

    private static func create(_ state: inout State, _ route: Route, _ body: [UInt8], loop: EventLoop) -> HTTPResponse {
        guard let object = try? JSONReader.parse(body), var fields = object.objectValue else {
            return status(400, reason: "BadRequest", message: "the body is not a JSON object")
        }
        guard route.resource.namespaced == (route.namespace != nil) else {
            return status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
        var metadata = fields["metadata"]?.objectValue ?? JSONObject()
        if let namespace = route.namespace, let given = metadata["namespace"]?.stringValue, given != namespace {
            return status(400, reason: "BadRequest", message: "the namespace of the provided object does not match the namespace sent on the request")
        }
        var name = metadata["name"]?.stringValue ?? ""
        if name.isEmpty, let prefix = metadata["generateName"]?.stringValue, !prefix.isEmpty {
            state.generatedNames += 1
            name = prefix + generatedSuffix(state.generatedNames)
            metadata["name"] = .string(name)
            fields["metadata"] = .object(metadata)
        }
        guard !name.isEmpty else {
            return status(422, reason: "Invalid", message: "\(route.resource.kind) \"\" is invalid: metadata.name: Required value: name or generateName is required")
        }
        let key = ObjectKey(resource: route.resource.plural, namespace: route.namespace ?? "", name: name)
        if state.objects[key] != nil {
            return status(409, reason: "AlreadyExists", message: "\(route.resource.plural) \"\(name)\" already exists",
                          details: ["name": .string(name), "kind": .string(route.resource.plural)])
        }
        return json(201, write(&state, route.resource, key, .object(fields), loop: loop))
    }

    private static func update(_ state: inout State, _ route: Route, _ key: ObjectKey, _ body: [UInt8], loop: EventLoop) -> HTTPResponse {
        guard let object = try? JSONReader.parse(body), object.objectValue != nil else {
            return status(400, reason: "BadRequest", message: "the body is not a JSON object")
        }
        if let name = object["metadata"]?["name"]?.stringValue, name != key.name {
            return status(400, reason: "BadRequest", message: "the name of the object (\(name)) does not match the name on the URL (\(key.name))")
        }
        guard let current = state.objects[key] else { return notFound(route) }
        if let conflict = staleVersionConflict(object, current, route, key) { return conflict }
        return json(200, write(&state, route.resource, key, object, loop: loop))
    }

    private static func patch(_ state: inout State, _ route: Route, _ key: ObjectKey, _ request: HTTPRequest, loop: EventLoop) -> HTTPResponse {
        guard request.headers["Content-Type"] == "application/merge-patch+json" else {
            return status(415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        }
        guard let current = state.objects[key] else { return notFound(route) }
        guard let patch = try? JSONReader.parse(request.body) else {
            return status(400, reason: "BadRequest", message: "error decoding patch")
        }
        if let conflict = staleVersionConflict(patch, current, route, key) { return conflict }
        return json(200, write(&state, route.resource, key, mergePatch(current, patch), loop: loop))
    }

    /// 409 when the request names a resourceVersion that is no longer the object's.
    private static func staleVersionConflict(_ request: JSON, _ current: JSON, _ route: Route, _ key: ObjectKey) -> HTTPResponse? {
        guard let wanted = request["metadata"]?["resourceVersion"]?.stringValue,
              wanted != current["metadata"]?["resourceVersion"]?.stringValue else { return nil }
        return status(409, reason: "Conflict", message: "Operation cannot be fulfilled on \(route.resource.plural)\(route.resource.group.isEmpty ? "" : "." + route.resource.group) \"\(key.name)\": the object has been modified; please apply your changes to the latest version and try again",
                      details: ["name": .string(key.name), "group": .string(route.resource.group), "kind": .string(route.resource.plural)])
    }

    /// Stores `object` with the fields the server owns, bumps the global resourceVersion,
    /// records the change and tells the watchers.
    private static func write(_ state: inout State, _ resource: Resource, _ key: ObjectKey, _ object: JSON, loop: EventLoop) -> JSON {
        state.resourceVersion += 1
        let previous = state.objects[key]
        let input = object.objectValue ?? JSONObject()
        var given = input["metadata"]?.objectValue ?? JSONObject()
        var metadata = JSONObject([("name", .string(key.name))])
        if let generateName = given["generateName"] { metadata["generateName"] = generateName }
        if resource.namespaced { metadata["namespace"] = .string(key.namespace) }
        metadata["uid"] = previous?["metadata"]?["uid"] ?? .string("00000000-0000-4000-8000-\(String(state.resourceVersion).leftPadded(12))")
        metadata["resourceVersion"] = .string(String(state.resourceVersion))
        metadata["creationTimestamp"] = previous?["metadata"]?["creationTimestamp"] ?? "2026-11-28T00:00:00Z"
        for name in ["name", "generateName", "namespace", "uid", "resourceVersion", "creationTimestamp"] { given[name] = nil }
        for (name, value) in given.members { metadata[name] = value }
        var stored = JSONObject([("kind", .string(resource.kind)), ("apiVersion", .string(resource.apiVersion)), ("metadata", .object(metadata))])
        for (name, value) in input.members where !["kind", "apiVersion", "metadata"].contains(name) { stored[name] = value }
        if previous == nil { resource.defaults(&stored, key.name) }
        let result = JSON.object(stored)
        state.objects[key] = result
        record(&state, Change(resourceVersion: state.resourceVersion, key: key, object: result, previous: previous, deleted: false), loop: loop)
        return result
    }

    /// Removes the object; its last state, with the deletion's new resourceVersion.
    private static func delete(_ state: inout State, _ resource: Resource, _ key: ObjectKey, loop: EventLoop) -> JSON? {
        guard let previous = state.objects.removeValue(forKey: key) else { return nil }
        state.resourceVersion += 1
        var last = previous.objectValue ?? JSONObject()
        var metadata = last["metadata"]?.objectValue ?? JSONObject()
        metadata["resourceVersion"] = .string(String(state.resourceVersion))
        last["metadata"] = .object(metadata)
        record(&state, Change(resourceVersion: state.resourceVersion, key: key, object: .object(last), previous: previous, deleted: true), loop: loop)
        return .object(last)
    }

    private static func record(_ state: inout State, _ change: Change, loop: EventLoop) {
        state.history.append(change)
        if state.history.count > state.historyLimit {
            state.compactedRevision = state.history.removeFirst().resourceVersion
        }
        for (id, watcher) in state.watchers {
            guard watcher.writer.isOpen else {
                state.watchers[id] = nil
                continue
            }
            if watcher.matches(change.key), let line = eventLine(change, for: watcher) { send(line, to: watcher.writer, loop: loop) }
        }
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

    // MARK: Watch lines

    /// Written on the loop in the order they were queued: every write goes through here, under
    /// the store's lock, so watchers see changes in resourceVersion order.
    private static func send(_ line: [UInt8], to writer: HTTPResponseWriter, loop: EventLoop) {
        loop.execute { writer.write(line) }
    }

    /// The event a watcher gets for a change, seen through its label selector: an object that
    /// starts matching is ADDED, one that stops matching is DELETED.
    private static func eventLine(_ change: Change, for watcher: Watcher) -> [UInt8]? {
        let now = !change.deleted && (watcher.selector?.matches(change.object) ?? true)
        let before = change.previous.map { watcher.selector?.matches($0) ?? true } ?? false
        switch (before, now) {
        case (false, true): return line("ADDED", change.object)
        case (true, true): return line("MODIFIED", change.object)
        case (true, false): return line("DELETED", change.object)
        case (false, false): return nil
        }
    }

    private static func line(_ type: String, _ object: JSON) -> [UInt8] {
        var bytes = JSONWriter.write(.object(JSONObject([("type", .string(type)), ("object", object)])))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    private static func bookmarkLine(_ resource: Resource, version: Int) -> [UInt8] {
        var object = JSONObject([
            ("kind", .string(resource.kind)), ("apiVersion", .string(resource.apiVersion)),
            ("metadata", .object(JSONObject([("resourceVersion", .string(String(version))), ("creationTimestamp", .null)]))),
        ])
        for (name, value) in resource.bookmarkFields { object[name] = value }
        return line("BOOKMARK", .object(object))
    }

    private static func errorLine(_ code: Int, reason: String, message: String) -> [UInt8] {
        line("ERROR", statusObject(code, reason: reason, message: message))
    }

    // MARK: Responses

    private static func notFound(_ route: Route) -> HTTPResponse {
        let name = route.name ?? ""
        return status(404, reason: "NotFound", message: "\(route.resource.plural) \"\(name)\" not found",
                      details: ["name": .string(name), "kind": .string(route.resource.plural)])
    }

    /// A `Status` body exactly as the apiserver writes one.
    static func status(_ code: Int, reason: String, message: String, details: JSON? = nil, metadata: JSONObject = JSONObject()) -> HTTPResponse {
        json(code, statusObject(code, reason: reason, message: message, details: details, metadata: metadata))
    }

    private static func statusObject(_ code: Int, reason: String, message: String, details: JSON? = nil,
                                     metadata: JSONObject = JSONObject()) -> JSON {
        var object = JSONObject([
            ("kind", "Status"), ("apiVersion", "v1"), ("metadata", .object(metadata)), ("status", "Failure"),
            ("message", .string(message)), ("reason", .string(reason)),
        ])
        if let details { object["details"] = details }
        object["code"] = .integer(code)
        return .object(object)
    }

    private static let headers: HTTPHeaders = ["Content-Type": "application/json", "Cache-Control": "no-cache, private"]

    /// Compact JSON ending in a newline, as Go's encoder writes it.
    static func json(_ code: Int, _ value: JSON) -> HTTPResponse {
        HTTPResponse(status: code, headers: headers, body: JSONWriter.write(value) + [UInt8(ascii: "\n")])
    }

    /// Five characters from the alphabet the apiserver uses for generated names.
    private static func generatedSuffix(_ counter: Int) -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        var value = counter &* 2_654_435_761 & 0x7fff_ffff
        var suffix = ""
        for _ in 0..<5 {
            suffix.append(alphabet[value % alphabet.count])
            value /= alphabet.count
        }
        return suffix
    }
}

// MARK: Resources and paths

extension FakeKubeAPIServer {
    struct Resource: Sendable {
        let group: String
        let version: String
        let plural: String
        let kind: String
        let namespaced: Bool
        /// What the real server writes besides kind, apiVersion and metadata in a BOOKMARK
        /// object: the Go type's zero value (`"containers":null` for a Pod).
        let bookmarkFields: [(String, JSON)]
        /// Fields the server fills in when the object is created.
        let defaults: @Sendable (inout JSONObject, String) -> Void

        var apiVersion: String { group.isEmpty ? version : group + "/" + version }

        static let all: [Resource] = [
            Resource(group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true,
                     bookmarkFields: [("spec", ["containers": nil]), ("status", [:])], defaults: { _, _ in }),
            Resource(group: "", version: "v1", plural: "services", kind: "Service", namespaced: true,
                     bookmarkFields: [("spec", [:]), ("status", ["loadBalancer": [:]])], defaults: { _, _ in }),
            Resource(group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false,
                     bookmarkFields: [("spec", [:]), ("status", [:])], defaults: { object, name in
                         var metadata = object["metadata"]?.objectValue ?? JSONObject()
                         var labels = metadata["labels"]?.objectValue ?? JSONObject()
                         labels["kubernetes.io/metadata.name"] = .string(name)
                         metadata["labels"] = .object(labels)
                         object["metadata"] = .object(metadata)
                         if object["spec"] == nil { object["spec"] = ["finalizers": ["kubernetes"]] }
                         object["status"] = ["phase": "Active"]
                     }),
            Resource(group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true,
                     bookmarkFields: [], defaults: { _, _ in }),
            Resource(group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice", namespaced: true,
                     bookmarkFields: [("addressType", ""), ("endpoints", nil), ("ports", nil)], defaults: { _, _ in }),
            Resource(group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true,
                     bookmarkFields: [("spec", [:])], defaults: { _, _ in }),
            Resource(group: "admissionregistration.k8s.io", version: "v1", plural: "mutatingwebhookconfigurations",
                     kind: "MutatingWebhookConfiguration", namespaced: false, bookmarkFields: [], defaults: { _, _ in }),
        ]
    }

    /// What an API path names: a collection (in one namespace, or across all of them), or one object.
    struct Route {
        let resource: Resource
        /// Nil for cluster-scoped resources and for lists across namespaces.
        let namespace: String?
        let name: String?

        var key: ObjectKey? { name.map { ObjectKey(resource: resource.plural, namespace: namespace ?? "", name: $0) } }

        init?(_ path: String) {
            let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
            guard !parts.contains(""), parts.count >= 3 else { return nil }
            let (group, version, rest): (String, String, [String])
            if parts[0] == "api" {
                (group, version, rest) = ("", parts[1], Array(parts[2...]))
            } else if parts[0] == "apis", parts.count >= 4 {
                (group, version, rest) = (parts[1], parts[2], Array(parts[3...]))
            } else {
                return nil
            }
            func resource(_ plural: String) -> Resource? {
                Resource.all.first { $0.group == group && $0.version == version && $0.plural == plural }
            }
            if rest.count >= 3, rest.count <= 4, rest[0] == "namespaces", let found = resource(rest[2]), found.namespaced {
                (self.resource, namespace, name) = (found, rest[1], rest.count == 4 ? rest[3] : nil)
            } else if rest.count <= 2, let found = resource(rest[0]) {
                guard rest.count == 1 || !found.namespaced else { return nil }
                (self.resource, namespace, name) = (found, nil, rest.count == 2 ? rest[1] : nil)
            } else {
                return nil
            }
        }
    }

    /// Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, joined by commas.
    struct LabelSelector: Sendable {
        enum Requirement: Sendable { case equals(String, String), notEquals(String, String), exists(String), absent(String) }
        let requirements: [Requirement]

        struct ParseError: Error { let description: String }

        init(_ text: String) throws(ParseError) {
            requirements = try text.split(separator: ",").map { part throws(ParseError) -> Requirement in
                let term = part.filter { $0 != " " }
                guard !term.isEmpty, !term.contains("(") else {
                    throw ParseError(description: "\(part): only equality-based selectors are supported by the fake")
                }
                if let equals = term.firstIndex(of: "=") {
                    let value = String(term[term.index(after: equals)...].drop { $0 == "=" })
                    if equals > term.startIndex, term[term.index(before: equals)] == "!" {
                        return .notEquals(String(term[..<term.index(before: equals)]), value)
                    }
                    return .equals(String(term[..<equals]), value)
                }
                return term.hasPrefix("!") ? .absent(String(term.dropFirst())) : .exists(term)
            }
        }

        func matches(_ object: JSON) -> Bool {
            let labels = object["metadata"]?["labels"]
            return requirements.allSatisfy { requirement in
                switch requirement {
                case .equals(let key, let value): labels?[key]?.stringValue == value
                case .notEquals(let key, let value): labels?[key]?.stringValue != value
                case .exists(let key): labels?[key] != nil
                case .absent(let key): labels?[key] == nil
                }
            }
        }
    }

    /// The apiserver's continue token: base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":KEY}`.
    enum ContinueToken {
        static func encode(version: Int, start: String) -> String {
            let body: JSON = .object(JSONObject([("v", "meta.k8s.io/v1"), ("rv", .integer(version)), ("start", .string(start))]))
            return String(Base64.encode(JSONWriter.write(body)).compactMap { character -> Character? in
                switch character {
                case "+": "-"
                case "/": "_"
                case "=": nil
                default: character
                }
            })
        }

        static func decode(_ token: String) -> (version: Int, start: String)? {
            var text = String(token.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
            text += String(repeating: "=", count: (4 - text.count % 4) % 4)
            guard let bytes = Base64.decode(text), let body = try? JSONReader.parse(bytes),
                  body["v"] == "meta.k8s.io/v1", let version = body["rv"]?.numberText.flatMap({ Int($0) }),
                  let start = body["start"]?.stringValue else { return nil }
            return (version, start)
        }
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
