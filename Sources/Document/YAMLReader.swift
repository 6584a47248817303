import CYAML

/// One document of a YAML stream: its node tree and the byte range it covers in the source, so a
/// writer can copy an unchanged document byte for byte.
public struct YAMLDocument: @unchecked Sendable {
    /// The document's root node; nil for an empty document (`---` followed by nothing).
    public let root: YAMLNode?
    /// The bytes from the end of the previous document up to the end of this one, including its
    /// leading comments, its `---` and any `...` marker.
    public let range: Range<Int>

    public var value: JSON { root?.json ?? .null }
}

/// A YAML syntax or structure error, with the place it was found.
public struct YAMLError: Error, Equatable, CustomStringConvertible {
    public var mark: SourceMark
    public var message: String
    /// The 0-based index of the document in the stream where the error is.
    public var document: Int

    public init(mark: SourceMark, message: String, document: Int = 0) {
        self.mark = mark
        self.message = message
        self.document = document
    }

    public var description: String { "\(mark): \(message)" }
}

/// Reads YAML streams with libyaml's event parser into `YAMLNode` trees.
public enum YAMLReader {
    /// How deep collections may nest; deeper input is refused rather than risking the stack.
    public static let maxDepth = 512

    /// Reads every document of a UTF-8 stream.
    public static func read(_ bytes: [UInt8]) throws(YAMLError) -> [YAMLDocument] {
        var documents: [YAMLDocument] = []
        do {
            try read(bytes) { documents.append($0) }
        } catch let error as YAMLError {
            throw error
        } catch {
            preconditionFailure("collecting documents cannot fail: \(error)")
        }
        return documents
    }

    /// Reads a stream one document at a time, handing each to `visit` as soon as it is complete
    /// and letting it go afterwards, so memory holds one document's tree, not the stream's.
    /// Errors from `visit` propagate unchanged; syntax errors are `YAMLError`s.
    public static func read(_ bytes: [UInt8], each visit: (YAMLDocument) throws -> Void) throws {
        var builder = TreeBuilder(bytes: bytes)
        do {
            try bytes.withUnsafeBufferPointer { buffer in
                try builder.run(buffer, visit: visit)
            }
        } catch var error as YAMLError {
            error.document = builder.completedDocuments
            throw error
        }
    }

    public static func read(_ text: String) throws(YAMLError) -> [YAMLDocument] {
        try read(Array(text.utf8))
    }
}

/// Builds node trees from libyaml events, one open collection per stack entry.
private struct TreeBuilder {
    /// An open collection; a class so that adding a child appends in place.
    private final class Open {
        let isMapping: Bool
        let start: SourceMark
        let tag: String?
        let anchor: String?
        let flow: Bool
        /// Sequence items, or mapping keys.
        var items: [YAMLNode] = []
        var values: [YAMLNode] = []

        init(isMapping: Bool, start: SourceMark, tag: String?, anchor: String?, flow: Bool) {
            self.isMapping = isMapping
            self.start = start
            self.tag = tag
            self.anchor = anchor
            self.flow = flow
        }
    }

    let bytes: [UInt8]
    /// libyaml counts characters, not bytes; for non-ASCII input this maps one to the other.
    private let byteOffsets: [Int]?
    private var stack: [Open] = []
    private var anchors: [String: YAMLNode] = [:]
    private var documentRoot: YAMLNode?
    private var documentStart = 0
    /// The last complete document, held back until it is known whether text follows it.
    private var pending: YAMLDocument?
    private(set) var completedDocuments = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        if bytes.contains(where: { $0 >= 0x80 }) {
            var offsets: [Int] = []
            offsets.reserveCapacity(bytes.count + 1)
            for (offset, byte) in bytes.enumerated() where byte & 0xC0 != 0x80 {
                offsets.append(offset)
            }
            offsets.append(bytes.count)
            byteOffsets = offsets
        } else {
            byteOffsets = nil
        }
    }

    mutating func run(_ buffer: UnsafeBufferPointer<UInt8>, visit: (YAMLDocument) throws -> Void) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError(mark: SourceMark(offset: 0, line: 1, column: 1), message: "libyaml could not start a parser")
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count)

        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else {
                throw parserError(parser)
            }
            defer { yaml_event_delete(&event) }
            switch event.type {
            case YAML_STREAM_END_EVENT:
                // Text after the last document (a comment, a `...`, blank lines) belongs to it,
                // so that concatenating every document's range gives back the whole input.
                if let last = pending {
                    try visit(YAMLDocument(root: last.root, range: last.range.lowerBound..<bytes.count))
                }
                return
            case YAML_DOCUMENT_START_EVENT:
                if let last = pending {
                    pending = nil
                    try visit(last)
                }
                try handle(&event)
            default:
                try handle(&event)
            }
        }
    }

    private func offset(_ mark: yaml_mark_t) -> Int {
        let index = Int(mark.index)
        guard let byteOffsets else { return min(index, bytes.count) }
        return byteOffsets[min(index, byteOffsets.count - 1)]
    }

    private func sourceMark(_ mark: yaml_mark_t) -> SourceMark {
        SourceMark(offset: offset(mark), line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    private func parserError(_ parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        var message = problem
        if let context = parser.context {
            message = "\(String(cString: context)): \(problem)"
        }
        return YAMLError(mark: sourceMark(parser.problem_mark), message: message)
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    private mutating func handle(_ event: inout yaml_event_t) throws {
        let start = sourceMark(event.start_mark)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            anchors.removeAll(keepingCapacity: true)
            documentRoot = nil
        case YAML_DOCUMENT_END_EVENT:
            let end = offset(event.end_mark)
            pending = YAMLDocument(root: documentRoot, range: documentStart..<end)
            completedDocuments += 1
            documentRoot = nil
            documentStart = end
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let style: YAMLNode.ScalarStyle
            switch scalar.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            var end = offset(event.end_mark)
            if style == .literal || style == .folded {
                end = trimmingLineBreaks(end, notBefore: start.offset)
            }
            let tag = Self.string(scalar.tag)
            let node = YAMLNode(content: .scalar(value, style),
                                json: try ScalarResolver.resolve(value, style: style, tag: tag, at: start),
                                start: start, end: end, isFlow: false, tag: tag, anchor: Self.string(scalar.anchor))
            try add(node)
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let target = anchors[name] else {
                throw YAMLError(mark: start, message: "unknown alias *\(name)")
            }
            let node = YAMLNode(content: .alias(target), json: target.json, start: start, end: offset(event.end_mark),
                                isFlow: false, tag: nil, anchor: nil)
            try add(node)
        case YAML_SEQUENCE_START_EVENT:
            let data = event.data.sequence_start
            try push(Open(isMapping: false, start: start, tag: Self.string(data.tag), anchor: Self.string(data.anchor),
                          flow: data.style == YAML_FLOW_SEQUENCE_STYLE), at: start)
        case YAML_MAPPING_START_EVENT:
            let data = event.data.mapping_start
            try push(Open(isMapping: true, start: start, tag: Self.string(data.tag), anchor: Self.string(data.anchor),
                          flow: data.style == YAML_FLOW_MAPPING_STYLE), at: start)
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            try pop(endMark: event.end_mark)
        default:
            break
        }
    }

    /// A block collection ends with the line of its last value, comment included, so a writer
    /// that appends to it does not separate a value from its comment.
    private func lineEnd(after offset: Int) -> Int {
        SourceText.lineEnd(after: offset, in: bytes)
    }

    /// A block scalar's end mark stands after its line breaks; the node ends at its last character.
    private func trimmingLineBreaks(_ end: Int, notBefore start: Int) -> Int {
        var end = end
        while end > start, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") {
            end -= 1
        }
        return end
    }

    private mutating func push(_ open: Open, at mark: SourceMark) throws {
        guard stack.count < YAMLReader.maxDepth else {
            throw YAMLError(mark: mark, message: "collections nest deeper than \(YAMLReader.maxDepth) levels")
        }
        stack.append(open)
    }

    private mutating func pop(endMark: yaml_mark_t) throws {
        guard let open = stack.popLast() else { return }
        let node: YAMLNode
        if open.isMapping {
            let end = open.flow ? offset(endMark) : lineEnd(after: open.values.last?.end ?? open.start.offset)
            node = YAMLNode(content: .mapping(keys: open.items, values: open.values),
                            json: try Self.mappingValue(keys: open.items, values: open.values),
                            start: open.start, end: end, isFlow: open.flow, tag: open.tag, anchor: open.anchor)
        } else {
            let end = open.flow ? offset(endMark) : lineEnd(after: open.items.last?.end ?? open.start.offset)
            node = YAMLNode(content: .sequence(open.items), json: .array(open.items.map(\.json)),
                            start: open.start, end: end, isFlow: open.flow, tag: open.tag, anchor: open.anchor)
        }
        try add(node)
    }

    private mutating func add(_ node: YAMLNode) throws {
        if let anchor = node.anchor { anchors[anchor] = node }
        guard let top = stack.last else {
            documentRoot = node
            return
        }
        if top.isMapping && top.items.count > top.values.count {
            top.values.append(node)
        } else {
            top.items.append(node)
        }
    }

    /// A mapping's JSON object: keys as strings, duplicates refused, `<<` merges applied with the
    /// mapping's own keys winning, as Kubernetes tooling does.
    private static func mappingValue(keys: [YAMLNode], values: [YAMLNode]) throws -> JSON {
        var object = JSONObject()
        var merged: [(String, JSON)] = []
        for (key, value) in zip(keys, values) {
            if key.isMergeKey {
                let sources: [JSON]
                switch value.json {
                case .object: sources = [value.json]
                case .array(let items): sources = items
                default:
                    throw YAMLError(mark: value.start, message: "a merge key (<<) needs a mapping or a list of mappings")
                }
                for source in sources {
                    guard let sourceObject = source.objectValue else {
                        throw YAMLError(mark: value.start, message: "a merge key (<<) needs a mapping or a list of mappings")
                    }
                    for (mergedKey, mergedValue) in sourceObject.members where !merged.contains(where: { $0.0 == mergedKey }) {
                        merged.append((mergedKey, mergedValue))
                    }
                }
                continue
            }
            guard let text = key.json.keyText else {
                throw YAMLError(mark: key.start, message: "a mapping key must be a scalar")
            }
            if object.index(forKey: text) != nil {
                throw YAMLError(mark: key.start, message: "duplicate key \"\(text)\"")
            }
            object.appendUnchecked(key: text, value: value.json)
        }
        for (key, value) in merged where object.index(forKey: key) == nil {
            object.appendUnchecked(key: key, value: value)
        }
        return .object(object)
    }
}
