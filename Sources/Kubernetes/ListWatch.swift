import Document

/// One line of a Kubernetes watch stream.
public enum WatchEvent: Sendable, Equatable {
    case added(JSON)
    case modified(JSON)
    case deleted(JSON)
    /// The stream's position moved without a change (`allowWatchBookmarks=true`).
    case bookmark(resourceVersion: String)
    /// An error inside the stream; `code` 410 means the resourceVersion is too old.
    case error(code: Int?, message: String)

    /// Reads one watch line; nil for something that is not a watch event.
    public init?(_ line: JSON) {
        guard let type = line["type"]?.stringValue, let object = line["object"] else { return nil }
        switch type {
        case "ADDED": self = .added(object)
        case "MODIFIED": self = .modified(object)
        case "DELETED": self = .deleted(object)
        case "BOOKMARK":
            guard let version = object["metadata"]?["resourceVersion"]?.stringValue else { return nil }
            self = .bookmark(resourceVersion: version)
        case "ERROR":
            self = .error(code: object["code"]?.numberText.flatMap { Int($0) },
                          message: object["message"]?.stringValue ?? "watch error")
        default:
            return nil
        }
    }
}

/// The list-then-watch protocol of a Kubernetes client, as a pure state machine: events (pages,
/// watch lines, failures, timers) in, actions (requests to make, changes to apply, waits) out.
///
/// It lists in pages (`limit`/`continue`), replaces its view with the complete list, watches from
/// the list's resourceVersion with bookmarks, and relists when the server says the version is too
/// old: a 410 ERROR event inside a watch stream (how an expired watch is reported) or an HTTP 410
/// on a list page (an expired `continue` token). Other failures back off exponentially, capped,
/// and resume the watch where it was.
public struct ListWatchMachine: Sendable {
    public enum Event: Sendable, Equatable {
        case start
        case listPage(items: [JSON], resourceVersion: String, continueToken: String?)
        /// A list request failed; `status` is the HTTP status when there was one.
        case listFailed(status: Int?)
        case watchEvent(WatchEvent)
        /// The server ended the watch normally (its `timeoutSeconds`).
        case watchEnded
        /// The watch connection failed.
        case watchFailed
        case backoffElapsed
    }

    public enum Action: Sendable, Equatable {
        case list(continueToken: String?)
        case watch(resourceVersion: String)
        /// The complete current set, after a (re)list: replace everything known.
        case replaceAll([JSON])
        case upsert(JSON)
        case delete(JSON)
        case wait(Duration)
    }

    private enum State: Sendable, Equatable {
        case idle
        case listing(items: [JSON])
        case watching(resourceVersion: String)
        case backingOff(resumeFrom: String?)
    }

    private var state: State = .idle
    private var failures = 0
    public let initialBackoff: Duration
    public let maxBackoff: Duration

    public init(initialBackoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(30)) {
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// The resourceVersion a watch would resume from, if the machine has one.
    public var resourceVersion: String? {
        switch state {
        case .watching(let version): return version
        case .backingOff(let version): return version
        default: return nil
        }
    }

    public mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.idle, .start):
            state = .listing(items: [])
            return [.list(continueToken: nil)]

        case (.listing(var items), .listPage(let page, let version, let token)):
            items += page
            if let token, !token.isEmpty {
                state = .listing(items: items)
                return [.list(continueToken: token)]
            }
            failures = 0
            state = .watching(resourceVersion: version)
            return [.replaceAll(items), .watch(resourceVersion: version)]

        case (.listing, .listFailed(let status)):
            // An expired continue token (410) means starting the list over, at once; anything
            // else waits first.
            if status == 410 {
                state = .listing(items: [])
                return [.list(continueToken: nil)]
            }
            return backOff(resumeFrom: nil)

        case (.watching(let version), .watchEvent(let watchEvent)):
            switch watchEvent {
            case .added(let object), .modified(let object):
                failures = 0
                state = .watching(resourceVersion: Self.version(of: object) ?? version)
                return [.upsert(object)]
            case .deleted(let object):
                failures = 0
                state = .watching(resourceVersion: Self.version(of: object) ?? version)
                return [.delete(object)]
            case .bookmark(let newVersion):
                state = .watching(resourceVersion: newVersion)
                return []
            case .error(let code, _):
                if code == 410 {
                    state = .listing(items: [])
                    return [.list(continueToken: nil)]
                }
                return backOff(resumeFrom: version)
            }

        case (.watching(let version), .watchEnded):
            return [.watch(resourceVersion: version)]

        case (.watching(let version), .watchFailed):
            return backOff(resumeFrom: version)

        case (.backingOff(let version), .backoffElapsed):
            if let version {
                state = .watching(resourceVersion: version)
                return [.watch(resourceVersion: version)]
            }
            state = .listing(items: [])
            return [.list(continueToken: nil)]

        default:
            // Late answers to requests that were superseded change nothing.
            return []
        }
    }

    private mutating func backOff(resumeFrom version: String?) -> [Action] {
        failures += 1
        state = .backingOff(resumeFrom: version)
        var delay = initialBackoff
        for _ in 1..<failures where delay < maxBackoff { delay *= 2 }
        return [.wait(min(delay, maxBackoff))]
    }

    private static func version(of object: JSON) -> String? {
        object["metadata"]?["resourceVersion"]?.stringValue
    }
}

/// What a list/watch has seen: every object by namespace/name, kept current by the machine's
/// actions. The bridge turns its changes into registry events.
public struct InformerCache: Sendable {
    public private(set) var objects: [String: JSON] = [:]

    public init() {}

    public static func key(of object: JSON) -> String? {
        guard let name = object["metadata"]?["name"]?.stringValue else { return nil }
        return (object["metadata"]?["namespace"]?.stringValue ?? "") + "/" + name
    }

    /// Applies an action; returns the objects that changed (for deletions, the last known state).
    @discardableResult
    public mutating func apply(_ action: ListWatchMachine.Action) -> [JSON] {
        switch action {
        case .replaceAll(let items):
            var fresh: [String: JSON] = [:]
            for item in items {
                if let key = Self.key(of: item) { fresh[key] = item }
            }
            let changed = fresh.filter { objects[$0.key] != $0.value }.map(\.value)
            let removed = objects.filter { fresh[$0.key] == nil }.map(\.value)
            objects = fresh
            return changed + removed
        case .upsert(let object):
            guard let key = Self.key(of: object), objects[key] != object else { return [] }
            objects[key] = object
            return [object]
        case .delete(let object):
            guard let key = Self.key(of: object), let old = objects.removeValue(forKey: key) else { return [] }
            return [old]
        case .list, .watch, .wait:
            return []
        }
    }
}
