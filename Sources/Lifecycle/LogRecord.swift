/// One log line as data: a constant message plus fields, so the core can be tested on what it
/// says and the shell decides how it is written.
public struct LogRecord: Equatable, Sendable, CustomStringConvertible {
    public enum Level: String, Sendable { case info, warning, error }

    public var level: Level
    public var message: String
    public var fields: [Field]

    public struct Field: Equatable, Sendable {
        public var key: String
        public var value: String
    }

    public init(_ level: Level, _ message: String, _ fields: [(String, String)] = []) {
        self.level = level
        self.message = message
        self.fields = fields.map { Field(key: $0.0, value: $0.1) }
    }

    /// logfmt: `level=info msg="app exited" code=0`.
    public var description: String {
        var line = "level=\(level.rawValue) msg=\(quoted(message))"
        for field in fields { line += " \(field.key)=\(quoted(field.value))" }
        return line
    }

    private func quoted(_ text: String) -> String {
        let plain = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "-_./:@".contains($0) }
        if plain { return text }
        var escaped = "\""
        for character in text {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }
}

/// Where the shell sends log records; the caller (the CLI) decides the destination.
public typealias LogSink = @Sendable (LogRecord) -> Void
