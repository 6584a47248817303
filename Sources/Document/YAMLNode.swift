/// A place in a source text: a byte offset, and the 1-based line and column people read.
public struct SourceMark: Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var line: Int
    public var column: Int

    public init(offset: Int, line: Int, column: Int) {
        self.offset = offset
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// A YAML node as libyaml read it, with where it stands in the source.
///
/// Nodes keep what a rewrite needs to leave untouched text alone: byte ranges, block or flow
/// style, scalar style, tags and anchors. `json` is the resolved value (aliases followed, merge
/// keys applied, plain scalars typed the way Kubernetes tooling types them).
public final class YAMLNode: @unchecked Sendable {
    public enum Content {
        case scalar(String, ScalarStyle)
        case sequence([YAMLNode])
        case mapping(keys: [YAMLNode], values: [YAMLNode])
        /// An alias (`*name`) to an earlier anchored node.
        case alias(YAMLNode)
    }

    public enum ScalarStyle: Sendable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    public let content: Content
    public let start: SourceMark
    /// Where the node's own text ends: after the last character of its last scalar, or after the
    /// closing bracket of a flow collection. Trailing comments and line breaks are not included.
    public let end: Int
    public let isFlow: Bool
    public let tag: String?
    public let anchor: String?
    /// The resolved value.
    public let json: JSON

    init(content: Content, json: JSON, start: SourceMark, end: Int, isFlow: Bool, tag: String?, anchor: String?) {
        self.content = content
        self.json = json
        self.start = start
        self.end = end
        self.isFlow = isFlow
        self.tag = tag
        self.anchor = anchor
    }

    /// The node a JSON Pointer's tokens lead to, following aliases and merge keys; the deepest
    /// node found on the way when the path leaves the source (a value the reader never saw).
    public func deepestNode(along tokens: [String]) -> YAMLNode {
        var node = self
        for token in tokens {
            guard let next = node.child(token) else { break }
            node = next
        }
        return node
    }

    private func child(_ token: String) -> YAMLNode? {
        switch content {
        case .alias(let target):
            return target.child(token)
        case .sequence(let items):
            guard let index = Int(token), items.indices.contains(index) else { return nil }
            return items[index]
        case .mapping(let keys, let values):
            for (key, value) in zip(keys, values) where key.json.keyText == token {
                return value
            }
            for (key, value) in zip(keys, values) where key.isMergeKey {
                let sources: [YAMLNode]
                switch value.resolved.content {
                case .sequence(let items): sources = items
                default: sources = [value]
                }
                for source in sources {
                    if let found = source.resolved.child(token) { return found }
                }
            }
            return nil
        case .scalar:
            return nil
        }
    }

    /// The node itself, or the anchored node an alias stands for.
    var resolved: YAMLNode {
        if case .alias(let target) = content { return target.resolved }
        return self
    }

    /// `<<` written plain, the YAML 1.1 merge key that Kubernetes tooling honours.
    var isMergeKey: Bool {
        if case .scalar("<<", .plain) = content, tag == nil { return true }
        return false
    }
}

extension JSON {
    /// The text a scalar stands for as a mapping key (YAML allows `8080:` or `true:`; Kubernetes
    /// tooling turns such keys into strings).
    var keyText: String? {
        switch self {
        case .string(let text), .number(let text): return text
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array, .object: return nil
        }
    }
}
