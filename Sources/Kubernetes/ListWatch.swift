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
            self = .error(code: object["code"]?.intValue,
                          message: object["message"]?.stringValue ?? "watch error")
        default:
            return nil
        }
    }
}

/// Cuts a watch body into events. The server writes one JSON object per line, but the reads
/// that deliver it follow the transport: a line may span several reads, and one read may hold
/// several lines.
public struct WatchStreamDecoder: Sendable {
    /// A watch line that cannot be read, or one longer than the limit.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Longer lines are refused rather than buffered without end.
    public let maxLineBytes: Int
    private var partial: [UInt8] = []

    public init(maxLineBytes: Int = 64 << 20) {
        self.maxLineBytes = maxLineBytes
    }

    /// The events completed by `bytes`, in order.
    public mutating func feed(_ bytes: [UInt8]) throws(Failure) -> [WatchEvent] {
        var events: [WatchEvent] = []
        var start = bytes.startIndex
        while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if partial.isEmpty {
                try decode(bytes[start..<newline], into: &events)
            } else {
                partial += bytes[start..<newline]
                try decode(partial[...], into: &events)
                partial.removeAll(keepingCapacity: true)
            }
            start = newline + 1
        }
        partial += bytes[start...]
        guard partial.count <= maxLineBytes else {
            throw Failure(description: "a watch line is longer than \(maxLineBytes) bytes")
        }
        return events
    }

    /// At the end of the body: a line without its newline is an event cut short.
    public func finish() throws(Failure) {
        guard partial.allSatisfy(Self.isSpace) else {
            throw Failure(description: "the watch ended inside an event (\(partial.count) bytes without a newline)")
        }
    }

    private func decode(_ line: ArraySlice<UInt8>, into events: inout [WatchEvent]) throws(Failure) {
        guard !line.allSatisfy(Self.isSpace) else { return }
        let json: JSON
        do {
            json = try JSONReader.parse(line)
        } catch {
            throw Failure(description: "a watch line is not JSON: \(error)")
        }
        guard let event = WatchEvent(json) else {
            throw Failure(description: "a watch line is not an event: \(String(decoding: line.prefix(120), as: UTF8.self))")
        }
        events.append(event)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
    }
}

/// The list-then-watch protocol of a Kubernetes client, as a pure state machine: events (pages,
/// watch lines, failures, timers) in, actions (requests to make, changes to apply, waits) out.
///
/// It lists in pages (`limit`/`continue`), replaces its view with the complete list, watches from
/// the list's resourceVersion with bookmarks, and relists when the server says the version is too
/// old: a 410 ERROR event inside a watch stream (how an expired watch is reported) or an HTTP 410
/// on a list page (an expired `continue` token). Other failures back off exponentially, capped,
/// and resume the watch where it was; any sign of a working server (a page, a change, a
/// bookmark) resets the backoff.
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
        /// `continued`: the next page was asked for with a continue token.
        case listing(items: [JSON], continued: Bool)
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
            return relist()

        case (.listing(var items, _), .listPage(let page, let version, let token)):
            items += page
            if let token, !token.isEmpty {
                state = .listing(items: items, continued: true)
                return [.list(continueToken: token)]
            }
            failures = 0
            state = .watching(resourceVersion: version)
            return [.replaceAll(items), .watch(resourceVersion: version)]

        case (.listing(_, let continued), .listFailed(let status)):
            // An expired continue token (410) means starting the list over, at once; anything
            // else, a 410 on a first page included, waits first.
            if status == 410 && continued { return relist() }
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
                failures = 0
                state = .watching(resourceVersion: newVersion)
                return []
            case .error(let code, _):
                if code == 410 { return relist() }
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
            return relist()

        default:
            // Late answers to requests that were superseded change nothing.
            return []
        }
    }

    private mutating func relist() -> [Action] {
        state = .listing(items: [], continued: false)
        return [.list(continueToken: nil)]
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
