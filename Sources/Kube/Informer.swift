import Document
import Kubernetes
import Synchronization
import Telemetry

/// Keeps a local copy of one collection (`/apis/discovery.k8s.io/v1/endpointslices`,
/// `/api/v1/namespaces/NS/services`, …) current and reports every change: the shell that runs
/// `ListWatchMachine` against a `KubeClient`.
///
/// It lists in pages, watches from the list's resourceVersion with bookmarks, relists when the
/// server says that version is gone (a 410 ERROR event in the stream, or a 410 on a continue
/// page), resumes a broken watch from the last version seen after a capped exponential backoff,
/// and stops when the task running `run()` is cancelled. For several collections, make one
/// informer each and run them in a task group; they can share one client.
///
/// Delivery: `onEvent` is called from the task running `run()`, one event at a time and in the
/// server's order, after `objects` already reflects it. A slow callback delays the watch, which
/// is back-pressure, not loss.
public final class Informer: Sendable {
    public enum Event: Sendable, Equatable {
        /// The complete current set after a list or relist: anything not in it is gone.
        case replaced([JSON])
        /// An object was added or changed (only when it differs from what was known).
        case upserted(JSON)
        /// An object was deleted; its last state (only for objects that were known).
        case deleted(JSON)
    }

    public struct Options: Sendable {
        /// Objects per list page.
        public var pageSize: Int
        /// How long the server keeps one watch open before the informer opens the next.
        public var watchTimeoutSeconds: Int
        public var labelSelector: String?
        public var initialBackoff: Duration
        public var maxBackoff: Duration

        public init(pageSize: Int = 500, watchTimeoutSeconds: Int = 300, labelSelector: String? = nil,
                    initialBackoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(30)) {
            self.pageSize = pageSize
            self.watchTimeoutSeconds = watchTimeoutSeconds
            self.labelSelector = labelSelector
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
        }
    }

    /// Requests and failures so far, for metrics and tests.
    public struct Counters: Sendable, Equatable {
        public var listRequests = 0
        public var watchRequests = 0
        /// Lists and watches that failed (the server unreachable, a 5xx, a broken stream).
        public var failures = 0
        /// Times the server said a resourceVersion or continue token was too old (410).
        public var expirations = 0

        public init(listRequests: Int = 0, watchRequests: Int = 0, failures: Int = 0, expirations: Int = 0) {
            self.listRequests = listRequests
            self.watchRequests = watchRequests
            self.failures = failures
            self.expirations = expirations
        }
    }

    public let path: String
    public let options: Options
    private let client: KubeClient
    private let logger: Logger?
    private let onEvent: @Sendable (Event) -> Void
    private let state = Mutex(State())

    private struct State {
        var cache = InformerCache()
        var hasSynced = false
        var resourceVersion: String?
        var counters = Counters()
    }

    public init(client: KubeClient, path: String, options: Options = Options(), logger: Logger? = nil,
                onEvent: @escaping @Sendable (Event) -> Void) {
        self.client = client
        self.path = path
        self.options = options
        self.logger = logger?.with(["collection": .string(path)])
        self.onEvent = onEvent
    }

    /// True once the first complete list has been delivered (what `/readyz` waits for).
    public var hasSynced: Bool { state.withLock { $0.hasSynced } }
    /// Every object known, by `namespace/name` (`/name` for cluster-scoped objects).
    public var objects: [String: JSON] { state.withLock { $0.cache.objects } }
    /// The version the next watch would start from.
    public var resourceVersion: String? { state.withLock { $0.resourceVersion } }
    public var counters: Counters { state.withLock { $0.counters } }

    /// Lists and watches until the task is cancelled.
    public func run() async {
        var machine = ListWatchMachine(initialBackoff: options.initialBackoff, maxBackoff: options.maxBackoff)
        var actions = machine.handle(.start)
        while !Task.isCancelled, !actions.isEmpty {
            let action = actions.removeFirst()
            switch action {
            case .list(let token):
                actions += await listPage(continue: token, machine: &machine)
            case .watch(let version):
                actions += await watch(from: version, machine: &machine)
            case .replaceAll, .upsert, .delete:
                deliver(action, machine: machine)
            case .wait(let delay):
                do { try await Task.sleep(for: delay) } catch { return }
                actions += machine.handle(.backoffElapsed)
            }
        }
    }

    private func listPage(continue token: String?, machine: inout ListWatchMachine) async -> [ListWatchMachine.Action] {
        count { $0.listRequests += 1 }
        do {
            let page = try await client.list(path, limit: options.pageSize, continue: token, labelSelector: options.labelSelector)
            return machine.handle(.listPage(items: page.items, resourceVersion: page.resourceVersion, continueToken: page.continueToken))
        } catch {
            if Task.isCancelled { return [] }
            count { if error.isExpired { $0.expirations += 1 } else { $0.failures += 1 } }
            logger?.warn("list failed", ["error": .string(error.description)])
            return machine.handle(.listFailed(status: error.status))
        }
    }

    /// Runs one watch to its end; returns what to do next.
    private func watch(from version: String, machine: inout ListWatchMachine) async -> [ListWatchMachine.Action] {
        count { $0.watchRequests += 1 }
        let started = ContinuousClock.now
        var received = false
        do {
            let events = try await client.watch(path, resourceVersion: version, timeoutSeconds: options.watchTimeoutSeconds,
                                                labelSelector: options.labelSelector)
            for try await event in events {
                received = true
                if case .error(let code, let message) = event {
                    count { if code == 410 { $0.expirations += 1 } else { $0.failures += 1 } }
                    logger?.info("watch ended by the server", ["code": code.map(JSON.integer) ?? .null, "message": .string(message)])
                }
                var next: [ListWatchMachine.Action] = []
                for action in machine.handle(.watchEvent(event)) {
                    switch action {
                    case .replaceAll, .upsert, .delete: deliver(action, machine: machine)
                    case .list, .watch, .wait: next.append(action)
                    }
                }
                // Leaving the loop drops the stream, which closes its connection.
                if !next.isEmpty { return next }
                state.withLock { $0.resourceVersion = machine.resourceVersion }
            }
            if Task.isCancelled { return [] }
            // A watch that ends at once with nothing in it is a server refusing to watch (or a
            // proxy in the way), not a timeout: back off rather than spin.
            if !received && ContinuousClock.now - started < .seconds(1) {
                count { $0.failures += 1 }
                logger?.warn("watch ended at once without events")
                return machine.handle(.watchFailed)
            }
            return machine.handle(.watchEnded)
        } catch {
            if Task.isCancelled { return [] }
            let error = error as? KubeError ?? KubeError("watch \(path): \(error)")
            if error.isExpired {
                // Older servers (and some proxies) say so with an HTTP 410 rather than an event.
                count { $0.expirations += 1 }
                return machine.handle(.watchEvent(.error(code: 410, message: error.message)))
            }
            count { $0.failures += 1 }
            logger?.warn("watch failed", ["error": .string(error.description)])
            return machine.handle(.watchFailed)
        }
    }

    private func deliver(_ action: ListWatchMachine.Action, machine: ListWatchMachine) {
        let event: Event? = state.withLock { state in
            let changed = state.cache.apply(action)
            state.resourceVersion = machine.resourceVersion
            switch action {
            case .replaceAll(let items):
                return .replaced(items)
            case .upsert(let object):
                return changed.isEmpty ? nil : .upserted(object)
            case .delete:
                return changed.first.map(Event.deleted)
            case .list, .watch, .wait:
                return nil
            }
        }
        if let event { onEvent(event) }
        // Synced once the first complete list has reached onEvent, not before: whoever waits for
        // hasSynced then sees what the handler was given.
        if case .replaceAll = action { state.withLock { $0.hasSynced = true } }
    }

    private func count(_ update: (inout Counters) -> Void) {
        state.withLock { update(&$0.counters) }
    }
}
