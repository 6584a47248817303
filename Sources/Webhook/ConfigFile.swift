import Document
import Glibc
import Injection

/// Why a config file cannot be used; the message names the file and, when known, the line.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The injection config file: YAML (or JSON) in the shape of the Helm chart's values, the same
/// file `tandem inject --config` reads and the chart mounts from its ConfigMap.
public enum ConfigFile {
    public static func parse(_ bytes: [UInt8], path: String) throws(ConfigError) -> InjectionConfig {
        let documents: [YAMLDocument]
        do {
            documents = try YAMLReader.read(bytes)
        } catch {
            throw ConfigError("config \(path):\(error.mark): \(error.message)")
        }
        guard documents.count <= 1 else { throw ConfigError("config \(path): expected one document, found \(documents.count)") }
        do {
            return try InjectionConfig(values: documents.first?.value ?? .object(JSONObject()))
        } catch {
            let mark = documents.first?.root?.deepestNode(along: error.pointer).start
            throw ConfigError("config \(path)\(mark.map { ":\($0)" } ?? ""): \(error.message)")
        }
    }

    /// The file's bytes, read through symlinks (a mounted ConfigMap's `..data` link).
    public static func read(_ path: String) throws(ConfigError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigError("config \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ConfigError("config \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
        }
    }

    public static func load(_ path: String) throws(ConfigError) -> InjectionConfig {
        try parse(read(path), path: path)
    }
}
