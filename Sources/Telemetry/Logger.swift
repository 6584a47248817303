import Document
import Glibc

/// Where log lines go. The standard sink writes each line with one `write(2)` to fd 2, so
/// lines from different threads never interleave.
public protocol LogSink: Sendable {
    func write(_ line: [UInt8])
}

public struct StandardErrorSink: LogSink {
    public init() {}

    public func write(_ line: [UInt8]) {
        line.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// A structured logger: one JSON object per line with `time`, `level`, `msg`, then the
/// logger's own fields and the call's fields, in order.
///
/// Messages are constant ("admission", "config reloaded"); what varies goes in fields, so logs
/// can be filtered by message. Create one in `main` and pass it down: libraries never make
/// their own.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case debug, info, warn, error

        public var name: String { ["debug", "info", "warn", "error"][rawValue] }

        public init?(name: String) {
            guard let level = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = level
        }

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var level: Level
    private let sink: any LogSink
    private let clock: @Sendable () -> timespec
    private var fields: [(String, JSON)]

    public init(level: Level = .info, sink: any LogSink = StandardErrorSink(),
                clock: @escaping @Sendable () -> timespec = Logger.realtime) {
        self.level = level
        self.sink = sink
        self.clock = clock
        self.fields = []
    }

    /// A logger that adds `fields` to every line (a component name, a request id).
    public func with(_ fields: KeyValuePairs<String, JSON>) -> Logger {
        var copy = self
        copy.fields += fields.map { ($0.key, $0.value) }
        return copy
    }

    public func debug(_ message: StaticString, _ fields: KeyValuePairs<String, JSON> = [:]) { log(.debug, message, fields) }
    public func info(_ message: StaticString, _ fields: KeyValuePairs<String, JSON> = [:]) { log(.info, message, fields) }
    public func warn(_ message: StaticString, _ fields: KeyValuePairs<String, JSON> = [:]) { log(.warn, message, fields) }
    public func error(_ message: StaticString, _ fields: KeyValuePairs<String, JSON> = [:]) { log(.error, message, fields) }

    public func log(_ level: Level, _ message: StaticString, _ extra: KeyValuePairs<String, JSON>) {
        guard level >= self.level else { return }
        var object = JSONObject()
        object.appendUnchecked(key: "time", value: .string(Self.timestamp(clock())))
        object.appendUnchecked(key: "level", value: .string(level.name))
        object.appendUnchecked(key: "msg", value: .string("\(message)"))
        for (key, value) in fields where object[key] == nil { object.appendUnchecked(key: key, value: value) }
        for (key, value) in extra where object[key] == nil { object.appendUnchecked(key: key, value: value) }
        var line = JSONWriter.write(.object(object))
        line.append(UInt8(ascii: "\n"))
        sink.write(line)
    }

    @Sendable public static func realtime() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }

    /// RFC 3339 in UTC with milliseconds: `2026-11-28T01:25:04.123Z`.
    static func timestamp(_ time: timespec) -> String {
        var seconds = time.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(time.tv_nsec / 1_000_000), 3))Z"
    }
}
