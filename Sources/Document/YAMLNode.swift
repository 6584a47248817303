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

/// The nodes of one YAML document, flat in document order: each node is followed by its
/// descendants and knows where its subtree ends. One array per document rather than one object
/// per node keeps reading a large manifest from being mostly allocation and reference counting.
///
/// Values are not kept per node: the document's value holds them all, and a walk from the root
/// finds each node's value in its parent's (see `YAMLNode.content`). So a node is plain data,
/// and building and dropping a tree costs no reference counting per node.
final class YAMLTree: @unchecked Sendable {
    /// Forty bytes rather than eighty: a document's nodes are written once and read along a
    /// rewrite's paths, so their size is most of what building a tree moves through memory.
    /// Lines, columns and indices fit 32 bits; byte offsets keep 64.
    struct Node {
        /// Byte offsets of the node's own text.
        private let startOffset: Int
        var end: Int
        private let line: Int32
        private let column: Int32
        private var nextIndex: Int32
        /// An index into `tags`, or -1.
        private let tagIndex: Int32
        /// The anchored node an alias stands for.
        private let aliasTarget: Int32
        private let shape: Shape
        private let style: YAMLNode.ScalarStyle
        let isFlow: Bool
        /// `<<` written plain, the YAML 1.1 merge key that Kubernetes tooling honours; known
        /// when the scalar is read, as every mapping asks it of every key.
        let isMergeKey: Bool

        private enum Shape: UInt8 {
            case scalar, sequence, mapping, alias
        }

        init(kind: YAMLNode.Kind, start: SourceMark, end: Int, next: Int, isFlow: Bool, isMergeKey: Bool = false, tag: Int? = nil) {
            startOffset = start.offset
            self.end = end
            line = Int32(clamping: start.line)
            column = Int32(clamping: start.column)
            nextIndex = Int32(next)
            tagIndex = tag.map { Int32($0) } ?? -1
            self.isFlow = isFlow
            self.isMergeKey = isMergeKey
            var target: Int32 = -1
            var style = YAMLNode.ScalarStyle.plain
            switch kind {
            case .scalar(let scalarStyle):
                shape = .scalar
                style = scalarStyle
            case .sequence: shape = .sequence
            case .mapping: shape = .mapping
            case .alias(let index):
                shape = .alias
                target = Int32(index)
            }
            aliasTarget = target
            self.style = style
        }

        var kind: YAMLNode.Kind {
            switch shape {
            case .scalar: return .scalar(style)
            case .sequence: return .sequence
            case .mapping: return .mapping
            case .alias: return .alias(Int(aliasTarget))
            }
        }

        var start: SourceMark { SourceMark(offset: startOffset, line: Int(line), column: Int(column)) }

        /// The index just past the node's last descendant: its next sibling, if it has one.
        var next: Int {
            get { Int(nextIndex) }
            set { nextIndex = Int32(newValue) }
        }

        /// The node's tag, as an index into `tags`.
        var tag: Int? { tagIndex < 0 ? nil : Int(tagIndex) }
    }

    let nodes: [Node]
    let tags: [String]
    /// The resolved value of the whole document: the root's.
    let value: JSON
    /// The values of merge keys' values (the `*base` in `<<: *base`), by node index: no
    /// mapping's value holds them as members.
    let mergeSources: [Int: JSON]

    init(nodes: [Node], tags: [String], value: JSON, mergeSources: [Int: JSON]) {
        self.nodes = nodes
        self.tags = tags
        self.value = value
        self.mergeSources = mergeSources
    }

    /// The children of the node at `index`, in order (keys and values alternate in a mapping).
    func forEachChild(of index: Int, _ body: (Int) -> Void) {
        var child = index + 1
        while child < nodes[index].next {
            body(child)
            child = nodes[child].next
        }
    }
}

/// A YAML node as libyaml read it, with where it stands in the source.
///
/// Nodes keep what a rewrite needs to leave untouched text alone: byte ranges, block or flow
/// style, scalar style and tags. `json` is the resolved value (aliases followed, merge keys
/// applied, plain scalars typed the way Kubernetes tooling types them).
public struct YAMLNode: @unchecked Sendable {
    enum Kind: Equatable {
        case scalar(ScalarStyle)
        case sequence
        case mapping
        /// An alias (`*name`) to the earlier anchored node at this index of the same document.
        case alias(Int)
    }

    public enum Content {
        case scalar(ScalarStyle)
        case sequence([YAMLNode])
        case mapping(keys: [YAMLNode], values: [YAMLNode])
        /// An alias (`*name`) to an earlier anchored node.
        case alias(YAMLNode)
    }

    public enum ScalarStyle: Sendable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    let tree: YAMLTree
    let index: Int
    /// The resolved value. A mapping key's is its text, as the mapping's value names it.
    public let json: JSON

    init(tree: YAMLTree, index: Int, json: JSON) {
        self.tree = tree
        self.index = index
        self.json = json
    }

    private var node: YAMLTree.Node { tree.nodes[index] }

    public var start: SourceMark { node.start }
    /// Where the node's own text ends: after the last character of its last scalar, or after the
    /// closing bracket of a flow collection. Trailing comments and line breaks are not included.
    public var end: Int { node.end }
    public var isFlow: Bool { node.isFlow }
    public var tag: String? { node.tag.map { tree.tags[$0] } }

    /// The node's children, gathered on demand (a rewrite asks only along the paths it changes),
    /// each with its value taken from this node's: a sequence's items in order, and a mapping's
    /// members in the order of its keys, merge keys aside (their values come after its own).
    public var content: Content {
        switch node.kind {
        case .scalar(let style):
            return .scalar(style)
        case .alias(let target):
            return .alias(YAMLNode(tree: tree, index: target, json: json))
        case .sequence:
            let values = json.arrayValue ?? []
            var items: [YAMLNode] = []
            items.reserveCapacity(values.count)
            tree.forEachChild(of: index) { items.append(YAMLNode(tree: tree, index: $0, json: values[items.count])) }
            return .sequence(items)
        case .mapping:
            let members = json.objectValue?.members
            var keys: [YAMLNode] = []
            var values: [YAMLNode] = []
            var member = 0
            tree.forEachChild(of: index) { child in
                if keys.count > values.count {
                    let value: JSON
                    if keys[keys.count - 1].isMergeKey {
                        value = tree.mergeSources[child] ?? .null
                    } else {
                        value = members?[member].value ?? .null
                        member += 1
                    }
                    values.append(YAMLNode(tree: tree, index: child, json: value))
                } else {
                    let key = tree.nodes[child].isMergeKey ? "<<" : members?[member].key ?? ""
                    keys.append(YAMLNode(tree: tree, index: child, json: .string(key)))
                }
            }
            return .mapping(keys: keys, values: values)
        }
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
            for (key, value) in zip(keys, values) where key.json.keyText() == token {
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
        if case .alias(let target) = node.kind { return YAMLNode(tree: tree, index: target, json: json).resolved }
        return self
    }

    /// `<<` written plain, the YAML 1.1 merge key that Kubernetes tooling honours.
    var isMergeKey: Bool { node.isMergeKey }
}

extension JSON {
    /// The text a scalar stands for as a mapping key (YAML allows `8080:` or `true:`; Kubernetes
    /// tooling turns such keys into strings). Consuming, so that the reader hands a key's text on
    /// without copying the scalar and then releasing it (once per key of every document).
    consuming func keyText() -> String? {
        switch consume self {
        case .string(let text), .number(let text): return text
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array, .object: return nil
        }
    }
}
