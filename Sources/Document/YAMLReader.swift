import CYAML
import Glibc

/// One document of a YAML stream: its nodes and the byte range it covers in the source, so a
/// writer can copy an unchanged document byte for byte.
public struct YAMLDocument: @unchecked Sendable {
    fileprivate let tree: YAMLTree
    /// The bytes from the end of the previous document up to the end of this one, including its
    /// leading comments, its `---` and any `...` marker.
    public let range: Range<Int>

    fileprivate init(tree: YAMLTree, range: Range<Int>) {
        self.tree = tree
        self.range = range
    }

    /// The document's root node; nil for an empty document (`---` followed by nothing).
    public var root: YAMLNode? { tree.nodes.isEmpty ? nil : YAMLNode(tree: tree, index: 0, json: tree.value) }

    public var value: JSON { tree.value }
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

/// Reads YAML streams with libyaml's event parser into trees of `YAMLNode`s.
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
        try read(bytes, in: bytes.indices, each: visit)
    }

    /// Reads the documents in `range` of a stream, which must begin at the stream's start or at a
    /// `---` line and end at another, as `documentStart(atOrAfter:in:)` finds them.
    /// Offsets and document ranges are the stream's; lines count from the range's start.
    public static func read(_ bytes: [UInt8], in range: Range<Int>, each visit: (YAMLDocument) throws -> Void) throws {
        var builder = TreeBuilder(bytes: bytes, range: range)
        do {
            try bytes.withUnsafeBufferPointer { buffer in
                try builder.run(UnsafeBufferPointer(rebasing: buffer[range]), visit: visit)
            }
        } catch var error as YAMLError {
            error.document = builder.completedDocuments
            throw error
        }
    }

    public static func read(_ text: String) throws(YAMLError) -> [YAMLDocument] {
        try read(Array(text.utf8))
    }

    /// The offset of the first `---` line at column 0 at or after `offset` that a stream can be
    /// cut at: such a line starts a new document wherever it stands (libyaml ends any scalar
    /// there), so the pieces read on their own give the stream's documents. A `---` that follows
    /// directives (`%YAML`, `%TAG`) is passed over, as they belong to its document.
    public static func documentStart(atOrAfter offset: Int, in bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { buffer in
            var lineStart = offset
            if lineStart > 0, lineStart < buffer.count, buffer[lineStart - 1] != UInt8(ascii: "\n") {
                lineStart = nextLine(after: lineStart, in: buffer)
            }
            while lineStart < buffer.count {
                if isDocumentMarker(at: lineStart, in: buffer), !followsDirective(lineStart, in: buffer) {
                    return lineStart
                }
                lineStart = nextLine(after: lineStart, in: buffer)
            }
            return nil
        }
    }

    private static func nextLine(after offset: Int, in buffer: UnsafeBufferPointer<UInt8>) -> Int {
        var index = offset
        while index < buffer.count, buffer[index] != UInt8(ascii: "\n") { index += 1 }
        return index + 1
    }

    private static func isDocumentMarker(at lineStart: Int, in buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        lineStart + 3 <= buffer.count && buffer[lineStart] == UInt8(ascii: "-")
            && buffer[lineStart + 1] == UInt8(ascii: "-") && buffer[lineStart + 2] == UInt8(ascii: "-")
            && (lineStart + 3 == buffer.count || isBlankOrBreak(buffer[lineStart + 3]))
    }

    /// Whether the lines before `lineStart`, past blank and comment lines, are directives.
    private static func followsDirective(_ lineStart: Int, in buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        var end = lineStart
        while end > 0 {
            var start = end - 1
            while start > 0, buffer[start - 1] != UInt8(ascii: "\n") { start -= 1 }
            if buffer[start] == UInt8(ascii: "%") { return true }
            let firstText = buffer[start..<end].firstIndex { !isBlankOrBreak($0) }
            if let firstText, buffer[firstText] != UInt8(ascii: "#") { return false }
            end = start
        }
        return false
    }

    private static func isBlankOrBreak(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }
}

/// Builds each document's flat node tree and its value from libyaml events. Each value goes
/// straight onto a stack shared by the open collections and moves from there into its
/// collection's storage, made at its exact size when the collection closes: so a value is made
/// and retained once, and no collection's storage grows by copying.
private struct TreeBuilder: ~Copyable {
    /// A collection still open: its node, and where its entries begin on the stacks. Plain
    /// data, so that opening and closing one moves a few words and counts no references.
    private struct Open {
        let index: Int
        let isMapping: Bool
        /// Its anchor waits on `openAnchors`, to be registered once it is complete, as an alias
        /// cannot refer into its own anchor.
        let hasAnchor: Bool
        /// The position of its first item on `items`, or of its first member on `members`.
        let firstEntry: Int
        /// What a mapping's next child is.
        var next = Next.key
    }

    private enum Next {
        case key
        /// The value of the key last put on `members`.
        case value
        /// The value of a merge key (`<<`): a mapping, or a list of them, to merge.
        case mergeValue
    }

    private let source: Source
    /// The current document's nodes; the first is its root. On a stack rather than in an array,
    /// as one is added per event and changed when its collection closes: an array checks that its
    /// storage is unique on each, and each document's needs making room for at its start.
    /// When the document ends they are copied out at once into an array of their exact size.
    private var nodes = Stack<YAMLTree.Node>(capacity: 256)
    private var tags: [String] = []
    private var rootValue = JSON.null
    private var mergeSources: [Int: JSON] = [:]
    /// The open collection that takes the next complete node, and those around it, the
    /// innermost last: kept apart so that the one changed with every child is a plain variable.
    private var innermost: Open?
    private var enclosing = Stack<Open>(capacity: 16)
    /// The open sequences' items and the open mappings' members, the innermost's last. A key
    /// goes on `members` with a null value, which its value then replaces.
    private var items = Stack<JSON>(capacity: 64)
    private var members = Stack<JSONObject.Member>(capacity: 64)
    private var openAnchors: [String] = []
    /// What open mappings' merge keys bring, by the mapping's node; first one wins.
    private var merged: [Int: JSONObject] = [:]
    /// The node completed last: when a collection closes, its last child.
    private var lastCompleted = 0
    private var anchors: [String: (index: Int, value: JSON)] = [:]
    private var documentStart = 0
    /// The last complete document, held back until it is known whether text follows it.
    private var pending: YAMLDocument?
    private(set) var completedDocuments = 0
    private let scalars = ScalarCache()

    init(bytes: [UInt8], range: Range<Int>) {
        source = Source(bytes: bytes, range: range)
        documentStart = range.lowerBound
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
            defer { Self.release(&event) }
            switch event.type {
            case YAML_STREAM_END_EVENT:
                // Text after the last document (a comment, a `...`, blank lines) belongs to it,
                // so that concatenating every document's range gives back the whole input.
                if let last = pending {
                    pending = nil
                    try visit(YAMLDocument(tree: last.tree, range: last.range.lowerBound..<source.limit))
                }
                return
            case YAML_DOCUMENT_START_EVENT:
                if let last = pending {
                    pending = nil
                    try visit(last)
                }
            default:
                break
            }
            try handle(&event)
        }
    }

    /// Frees what libyaml allocated for an event, as `yaml_event_delete` does (libyaml allocates
    /// with `malloc`). By hand for the events read all the time: the library's function looks at
    /// every kind of event, frees absent tags and anchors one call at a time and clears the whole
    /// event, which libyaml clears again before filling it (33M fewer instructions on the bench, 1.6%).
    @inline(__always)
    private static func release(_ event: inout yaml_event_t) {
        switch event.type {
        case YAML_SCALAR_EVENT:
            free(event.data.scalar.value)
            if let tag = event.data.scalar.tag { free(tag) }
            if let anchor = event.data.scalar.anchor { free(anchor) }
        case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT, YAML_DOCUMENT_END_EVENT:
            break
        case YAML_MAPPING_START_EVENT:
            if let tag = event.data.mapping_start.tag { free(tag) }
            if let anchor = event.data.mapping_start.anchor { free(anchor) }
        case YAML_SEQUENCE_START_EVENT:
            if let tag = event.data.sequence_start.tag { free(tag) }
            if let anchor = event.data.sequence_start.anchor { free(anchor) }
        default:
            yaml_event_delete(&event)
        }
    }

    private func parserError(_ parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        var message = problem
        if let context = parser.context {
            message = "\(String(cString: context)): \(problem)"
        }
        return YAMLError(mark: source.sourceMark(parser.problem_mark), message: message)
    }

    /// Inlined into the loop that runs it once per event (23M fewer instructions on the bench).
    @inline(__always)
    private mutating func handle(_ event: inout yaml_event_t) throws {
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            anchors.removeAll(keepingCapacity: true)
        case YAML_DOCUMENT_END_EVENT:
            let end = source.offset(event.end_mark)
            let tree = YAMLTree(nodes: Array(nodes.values(from: 0)), tags: tags, value: rootValue,
                                mergeSources: mergeSources)
            pending = YAMLDocument(tree: tree, range: documentStart..<end)
            nodes.removeAll(from: 0)
            tags = []
            rootValue = .null
            mergeSources = [:]
            completedDocuments += 1
            documentStart = end
        case YAML_SCALAR_EVENT:
            let start = source.sourceMark(event.start_mark)
            let scalar = event.data.scalar
            let style: YAMLNode.ScalarStyle
            switch scalar.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            var end = source.offset(event.end_mark)
            if style == .literal || style == .folded {
                end = source.trimmingLineBreaks(end, notBefore: start.offset)
            }
            // Tags and anchors are rare: without them no optional String is made, nor released.
            let value = UnsafeBufferPointer(start: scalar.value, count: scalar.length)
            let node: YAMLTree.Node
            let json: JSON
            if let tagText = scalar.tag {
                let tag = String(cString: tagText)
                json = try ScalarResolver.resolve(value, style: style, tag: tag, at: start)
                node = YAMLTree.Node(kind: .scalar(style), start: start, end: end, next: nodes.count + 1,
                                     isFlow: false, tag: tagIndex(tag))
            } else {
                json = scalars.value(of: value, isPlain: style == .plain)
                let isMergeKey = style == .plain && value.count == 2
                    && value[0] == UInt8(ascii: "<") && value[1] == UInt8(ascii: "<")
                node = YAMLTree.Node(kind: .scalar(style), start: start, end: end, next: nodes.count + 1,
                                     isFlow: false, isMergeKey: isMergeKey)
            }
            if let anchor = scalar.anchor {
                try add(node, value: json, anchor: String(cString: anchor))
            } else {
                try add(node, value: json, anchor: nil)
            }
        case YAML_ALIAS_EVENT:
            let start = source.sourceMark(event.start_mark)
            let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
            guard let target = anchors[name] else {
                throw YAMLError(mark: start, message: "unknown alias *\(name)")
            }
            try add(YAMLTree.Node(kind: .alias(target.index), start: start, end: source.offset(event.end_mark),
                                  next: nodes.count + 1, isFlow: false),
                    value: target.value, anchor: nil)
        case YAML_SEQUENCE_START_EVENT:
            let data = event.data.sequence_start
            try open(.sequence, at: event.start_mark, tag: data.tag, anchor: data.anchor,
                     flow: data.style == YAML_FLOW_SEQUENCE_STYLE)
        case YAML_MAPPING_START_EVENT:
            let data = event.data.mapping_start
            try open(.mapping, at: event.start_mark, tag: data.tag, anchor: data.anchor,
                     flow: data.style == YAML_FLOW_MAPPING_STYLE)
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            try close(endMark: event.end_mark)
        default:
            break
        }
    }

    private mutating func tagIndex(_ tag: String) -> Int {
        tags.append(tag)
        return tags.count - 1
    }

    /// Appends a complete node (a scalar or an alias) and hands its value to the open collection.
    private mutating func add(_ node: YAMLTree.Node, value: consuming JSON, anchor: String?) throws {
        let index = nodes.count
        nodes.push(node)
        try completed(index, value: value, anchor: anchor)
    }

    /// Puts a complete node's value where it belongs: in the open collection, or as the root.
    /// Inlined into its callers, which run once per node (7M fewer instructions on the bench).
    @inline(__always)
    private mutating func completed(_ index: Int, value: consuming JSON, anchor: String?) throws {
        lastCompleted = index
        if let anchor { anchors[anchor] = (index, value) }
        guard let open = innermost else {
            rootValue = value
            return
        }
        guard open.isMapping else {
            items.push(value)
            return
        }
        switch open.next {
        case .key:
            if nodes[index].isMergeKey {
                innermost!.next = .mergeValue
                return
            }
            guard let text = value.keyText() else {
                throw YAMLError(mark: nodes[index].start, message: "a mapping key must be a scalar")
            }
            // A mapping's first key repeats none: 135,000 of the bench's 270,000 keys need no search.
            if members.count > open.firstEntry, JSONObject.index(of: text, in: members.values(from: open.firstEntry)) != nil {
                throw YAMLError(mark: nodes[index].start, message: "duplicate key \"\(text)\"")
            }
            members.push(JSONObject.Member(key: text, value: .null))
            innermost!.next = .value
        case .value:
            members.setLastValue(value)
            innermost!.next = .key
        case .mergeValue:
            innermost!.next = .key
            try merge(value, into: open.index, at: nodes[index].start)
            mergeSources[index] = value
        }
    }

    /// Notes what a merge key (`<<`) brings, to be added once the mapping's own keys are known.
    private mutating func merge(_ value: JSON, into mapping: Int, at mark: SourceMark) throws {
        let sources: [JSON]
        switch value {
        case .object: sources = [value]
        case .array(let items): sources = items
        default:
            throw YAMLError(mark: mark, message: "a merge key (<<) needs a mapping or a list of mappings")
        }
        var brought = merged.removeValue(forKey: mapping) ?? JSONObject()
        for source in sources {
            guard let sourceObject = source.objectValue else {
                throw YAMLError(mark: mark, message: "a merge key (<<) needs a mapping or a list of mappings")
            }
            for member in sourceObject.storage where brought.index(forKey: member.key) == nil {
                brought.appendUnchecked(key: member.key, value: member.value)
            }
        }
        merged[mapping] = brought
    }

    /// Starts a collection: its node goes in now, before its children; its value and end are
    /// filled in when it closes. Its tag and anchor come as libyaml has them, and are made
    /// Strings only when present.
    private mutating func open(_ kind: YAMLNode.Kind, at mark: yaml_mark_t, tag: UnsafeMutablePointer<yaml_char_t>?,
                               anchor: UnsafeMutablePointer<yaml_char_t>?, flow: Bool) throws {
        let start = source.sourceMark(mark)
        guard enclosing.count + (innermost == nil ? 0 : 1) < YAMLReader.maxDepth else {
            throw YAMLError(mark: start, message: "collections nest deeper than \(YAMLReader.maxDepth) levels")
        }
        if let outer = innermost { enclosing.push(outer) }
        let isMapping = kind == .mapping
        if let anchor { openAnchors.append(String(cString: anchor)) }
        innermost = Open(index: nodes.count, isMapping: isMapping, hasAnchor: anchor != nil,
                         firstEntry: isMapping ? members.count : items.count)
        nodes.push(YAMLTree.Node(kind: kind, start: start, end: start.offset, next: nodes.count + 1,
                                 isFlow: flow, tag: tag.map { tagIndex(String(cString: $0)) }))
    }

    private mutating func close(endMark: yaml_mark_t) throws {
        guard let open = innermost else { return }
        innermost = enclosing.popLast()
        let index = open.index
        let end: Int
        if nodes[index].isFlow {
            end = source.offset(endMark)
        } else {
            end = source.lineEnd(after: nodes.count > index + 1 ? nodes[lastCompleted].end : nodes[index].start.offset)
        }
        nodes[index].end = end
        nodes[index].next = nodes.count
        let value: JSON
        if open.isMapping {
            var object = JSONObject(uniqueMembersFrom: &members, from: open.firstEntry)
            if !merged.isEmpty, let brought = merged.removeValue(forKey: index) {
                for member in brought.storage where object.index(forKey: member.key) == nil {
                    object.appendUnchecked(key: member.key, value: member.value)
                }
            }
            value = .object(object)
        } else {
            value = .array(items.popAll(from: open.firstEntry))
        }
        try completed(index, value: value, anchor: open.hasAnchor ? openAnchors.removeLast() : nil)
    }
}

private extension Stack where Element == JSONObject.Member {
    /// Gives the last member, a key just read, its value.
    mutating func setLastValue(_ value: consuming JSON) {
        self[count - 1].value = value
    }
}

/// The stream libyaml reads, and how its marks become places in it. Apart from the builder, so
/// that asking for a place does not copy the whole builder.
private struct Source {
    let bytes: [UInt8]
    /// Where in `bytes` libyaml's input begins and ends.
    let base: Int
    let limit: Int
    /// libyaml counts characters, not bytes; for non-ASCII input this maps one to the other
    /// (offsets from `base`).
    private let byteOffsets: [Int]?

    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        base = range.lowerBound
        limit = range.upperBound
        let input = bytes[range]
        if !Self.isASCII(input) {
            var offsets: [Int] = []
            offsets.reserveCapacity(input.count + 1)
            for (offset, byte) in input.enumerated() where byte & 0xC0 != 0x80 {
                offsets.append(offset)
            }
            offsets.append(input.count)
            byteOffsets = offsets
        } else {
            byteOffsets = nil
        }
    }

    /// Whether every byte is ASCII, looked at eight at a time: this reads the whole input.
    private static func isASCII(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { raw in
            var seen: UInt64 = 0
            var index = 0
            while index + 8 <= raw.count {
                seen |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < raw.count {
                seen |= UInt64(raw[index])
                index += 1
            }
            return seen & 0x8080_8080_8080_8080 == 0
        }
    }

    func offset(_ mark: yaml_mark_t) -> Int {
        let index = Int(mark.index)
        guard let byteOffsets else { return base + min(index, limit - base) }
        return base + byteOffsets[min(index, byteOffsets.count - 1)]
    }

    func sourceMark(_ mark: yaml_mark_t) -> SourceMark {
        SourceMark(offset: offset(mark), line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    /// A block collection ends with the line of its last value, comment included, so a writer
    /// that appends to it does not separate a value from its comment.
    func lineEnd(after offset: Int) -> Int {
        SourceText.lineEnd(after: offset, in: bytes)
    }

    /// A block scalar's end mark stands after its line breaks; the node ends at its last character.
    func trimmingLineBreaks(_ end: Int, notBefore start: Int) -> Int {
        var end = end
        while end > start, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") {
            end -= 1
        }
        return end
    }
}

/// The values of recently read short scalars, by their bytes. Manifests repeat their keys in
/// every document and many values within one (names, labels, ports); a hit saves typing the
/// scalar and making its String, most of what a scalar costs the reader. Up to 15 bytes only:
/// such values are Strings held inline, so handing one out costs no reference counting.
private final class ScalarCache {
    private struct Entry {
        /// The scalar's bytes, its length and whether it is plain, packed by `key`.
        var low: UInt64
        var high: UInt64
        var value: JSON
    }

    /// 1,024 entries: room for a document's worth of distinct short scalars, small enough to
    /// stay in the processor's nearest cache.
    private static let bits = 10
    private let entries: UnsafeMutablePointer<Entry>

    init() {
        entries = .allocate(capacity: 1 << Self.bits)
        // No scalar packs to a length of 255, so no lookup matches an empty slot.
        entries.initialize(repeating: Entry(low: 0, high: .max, value: .null), count: 1 << Self.bits)
    }

    deinit {
        entries.deinitialize(count: 1 << Self.bits)
        entries.deallocate()
    }

    /// The value of an untagged scalar, as `ScalarResolver.untagged` gives it. A longer scalar
    /// that is one of Kubernetes' long field names or values is that string, made once.
    func value(of bytes: UnsafeBufferPointer<UInt8>, isPlain: Bool) -> JSON {
        guard bytes.count < 16 else {
            if let known = KnownStrings.string(utf8: bytes) { return .string(known) }
            return ScalarResolver.untagged(bytes, isPlain: isPlain)
        }
        let (low, high) = Self.key(bytes, isPlain: isPlain)
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        let slot = entries + Int(truncatingIfNeeded: ((low ^ (high &* multiplier)) &* multiplier) >> (64 - Self.bits))
        if slot.pointee.low == low, slot.pointee.high == high { return slot.pointee.value }
        let value = ScalarResolver.untagged(bytes, isPlain: isPlain)
        slot.pointee = Entry(low: low, high: high, value: value)
        return value
    }

    /// Up to 15 bytes in two integers, the length and plainness in the top byte: the first
    /// eight bytes, and the rest, each read in one or two loads that may overlap. Inlined, as
    /// it runs once per scalar (6M fewer instructions on the bench).
    @inline(__always)
    private static func key(_ bytes: UnsafeBufferPointer<UInt8>, isPlain: Bool) -> (UInt64, UInt64) {
        let count = bytes.count
        var high = UInt64(count | (isPlain ? 0x10 : 0)) << 56
        guard let start = bytes.baseAddress else { return (0, high) }
        let raw = UnsafeRawPointer(start)
        var low: UInt64 = 0
        if count >= 8 {
            low = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
            high |= UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)) >> (8 * (16 - count))
        } else if count >= 4 {
            // The two loads overlap on equal bytes, so or-ing them puts each byte in its place.
            low = UInt64(UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)))
                | UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self))) << (8 * (count - 4))
        } else {
            for index in 0..<count { low |= UInt64(bytes[index]) << (8 * index) }
        }
        return (low, high)
    }
}
