/// Writes a changed document back into its own source text, touching only what changed.
///
/// Unchanged values are copied byte for byte with their comments, quoting and indentation; new
/// mapping keys go after the last key at the mapping's indentation; new list items are placed
/// where they belong among the old ones (matched by `name`, as Kubernetes lists are); only
/// values whose kind changed are written afresh. So `diff input output` shows just the change,
/// and undoing the change gives back the input exactly.
public struct YAMLRewriter {
    /// New text already written for equal values: injecting a stream of workloads writes the same
    /// proxy container again and again, and copying its lines is far cheaper than emitting them.
    private let fragments = FragmentCache()

    public init() {}

    /// Appends to `output` the text of `document` (its whole byte range in `source`, which is
    /// `output`'s source) with its value replaced by `value`. A stream's documents all go into
    /// one text. Returns whether the value differs from the document's, so callers need not
    /// compare them again.
    @discardableResult
    public func rewrite(_ document: YAMLDocument, in source: [UInt8], to value: JSON, into output: inout SplicedText) -> Bool {
        let changed = document.value != value
        guard changed, let root = document.root else {
            output.append(source: document.range)
            return changed
        }
        var splicer = Splicer(source: source, tree: root.tree, fragments: fragments)
        swap(&output, &splicer.output)
        defer { swap(&output, &splicer.output) }
        splicer.copy(document.range.lowerBound..<root.start.offset)
        splicer.rewriteChanged(root.index, from: document.value, to: value, column: root.start.column)
        splicer.copy(root.end..<document.range.upperBound)
        return true
    }
}

/// A bounded memo of values written as YAML and laid out at a column.
private final class FragmentCache {
    /// A fragment where it goes. Values match only when they would be written the same: equal
    /// with their members in the same order (JSON's `==` ignores order, the text shows it). The
    /// value is hashed by its top levels only: fragments recur whole (the same proxy container
    /// for every workload), the top levels tell them apart, and the match, which returns at once
    /// for values that share storage, settles the rest. Hashing every leaf cost more than
    /// writing the lines.
    private struct Key: Hashable {
        let value: JSON
        let column: Int
        let newline: [UInt8]

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.column == rhs.column && lhs.newline == rhs.newline && writtenAlike(lhs.value, rhs.value)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(column)
            hasher.combine(newline)
            Self.combine(value, depth: 2, into: &hasher)
        }

        static func writtenAlike(_ lhs: JSON, _ rhs: JSON) -> Bool {
            switch (lhs, rhs) {
            case (.object(let left), .object(let right)):
                guard left.count == right.count else { return false }
                if left.sharesStorage(with: right) { return true }
                return left.storage.elementsEqual(right.storage) { $0.key == $1.key && writtenAlike($0.value, $1.value) }
            case (.array(let left), .array(let right)):
                guard left.count == right.count else { return false }
                // One buffer, as a list the injector reuses is: alike without looking.
                return left.sharesStorage(with: right) || left.elementsEqual(right, by: writtenAlike)
            case (.object, _), (.array, _):
                return false
            default:
                return lhs == rhs
            }
        }

        /// Members in order, each into the one hasher, as order counts for a match.
        private static func combine(_ value: JSON, depth: Int, into hasher: inout Hasher) {
            switch value {
            case .null: hasher.combine(0)
            case .bool(let flag): hasher.combine(flag)
            case .number(let text), .string(let text): hasher.combine(text)
            case .array(let items):
                hasher.combine(items.count)
                guard depth > 0 else { return }
                for item in items { combine(item, depth: depth - 1, into: &hasher) }
            case .object(let object):
                hasher.combine(object.count)
                guard depth > 0 else { return }
                for member in object.storage {
                    hasher.combine(member.key)
                    combine(member.value, depth: depth - 1, into: &hasher)
                }
            }
        }
    }

    private static let capacity = 256
    private var texts: [Key: [UInt8]] = [:]

    private struct Entry {
        let key: Key
        let text: [UInt8]
    }

    /// The fragments used last, in the order they were first written, and where the next lookup
    /// starts among them. The same few recur document after document in the same order (the
    /// proxy container, its volumes), mostly as the very values written before: starting after
    /// the last one found settles most lookups by one storage compare, without hashing the value
    /// or reordering the list.
    private static let recentCapacity = 4
    private var recent: [Entry] = []
    private var nextRecent = 0

    /// `value` written as YAML continuing the current line, its later lines indented to `column`.
    func text(of value: JSON, column: Int, newline: [UInt8]) -> [UInt8] {
        for offset in recent.indices {
            let index = (nextRecent + offset) % recent.count
            let key = recent[index].key
            if key.column == column, key.newline == newline, Key.writtenAlike(key.value, value) {
                nextRecent = index + 1
                return recent[index].text
            }
        }
        let key = Key(value: value, column: column, newline: newline)
        let text: [UInt8]
        if let cached = texts[key] {
            text = cached
        } else {
            text = written(value, column: column, newline: newline)
            if texts.count >= Self.capacity { texts.removeAll(keepingCapacity: true) }
            texts[key] = text
        }
        let index = min(nextRecent, recent.count) % Self.recentCapacity
        if recent.count < Self.recentCapacity {
            recent.insert(Entry(key: key, text: text), at: index)
        } else {
            recent[index] = Entry(key: key, text: text)
        }
        nextRecent = index + 1
        return text
    }

    private func written(_ value: JSON, column: Int, newline: [UInt8]) -> [UInt8] {
        var text: [UInt8] = []
        for (index, line) in YAMLWriter.lines(of: value).enumerated() {
            if index > 0 {
                text.append(contentsOf: newline)
                if !line.isEmpty { text.append(contentsOf: repeatElement(UInt8(ascii: " "), count: column - 1)) }
            }
            text.append(contentsOf: line)
        }
        return text
    }
}

struct Splicer {
    let source: [UInt8]
    let newline: [UInt8]
    var output: SplicedText
    private let fragments: FragmentCache
    /// The document's nodes, walked by index: a `YAMLNode` per child would cost an array and a
    /// reference count each, which was most of a rewrite's time. Each node's old value is handed
    /// down from its parent's, as the tree keeps none per node.
    private let tree: YAMLTree

    fileprivate init(source: [UInt8], tree: YAMLTree, fragments: FragmentCache) {
        self.source = source
        self.tree = tree
        self.fragments = fragments
        output = SplicedText(source: source)
        let firstBreak = source.firstIndex(of: UInt8(ascii: "\n"))
        if let firstBreak, firstBreak > 0, source[firstBreak - 1] == UInt8(ascii: "\r") {
            newline = [UInt8(ascii: "\r"), UInt8(ascii: "\n")]
        } else {
            newline = [UInt8(ascii: "\n")]
        }
    }

    mutating func copy(_ range: Range<Int>) {
        output.append(source: range)
    }

    private mutating func indent(_ column: Int) {
        output.append(contentsOf: newline)
        output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: column - 1))
    }

    private func lineEnd(_ offset: Int) -> Int { SourceText.lineEnd(after: offset, in: source) }
    private func lineStart(_ offset: Int) -> Int { SourceText.lineStart(of: offset, in: source) }

    private func start(_ node: Int) -> Int { tree.nodes[node].start.offset }
    private func end(_ node: Int) -> Int { tree.nodes[node].end }
    private func column(_ node: Int) -> Int { tree.nodes[node].start.column }
    private func hasChildren(_ node: Int) -> Bool { tree.nodes[node].next > node + 1 }

    private func children(of node: Int) -> [Int] {
        var children: [Int] = []
        tree.forEachChild(of: node) { children.append($0) }
        return children
    }

    /// Writes the replacement of `node`'s text, whose value was `old`. Fresh lines after the
    /// first start at `column`.
    private mutating func rewrite(_ node: Int, from old: JSON, to value: JSON, column: Int) {
        if old == value {
            copy(start(node)..<end(node))
            return
        }
        rewriteChanged(node, from: old, to: value, column: column)
    }

    /// `rewrite` once the value is known to have changed.
    mutating func rewriteChanged(_ node: Int, from old: JSON, to value: JSON, column: Int) {
        let isFlow = tree.nodes[node].isFlow
        let isTagged = tree.nodes[node].tag != nil
        if isFlow, !isTagged, !old.isEmptyCollection, Self.isNonEmptyCollection(value), sameKind(node, value) {
            flow(node, from: old, to: value)
            return
        }
        if !isFlow, !isTagged {
            switch (tree.nodes[node].kind, old, value) {
            case (.mapping, .object(let oldObject), .object(let object)) where !object.isEmpty:
                if mapping(node, from: oldObject, to: object) { return }
            case (.sequence, .array(let oldItems), .array(let items)) where !items.isEmpty:
                if sequence(node, from: oldItems, to: items) { return }
            default:
                break
            }
        }
        fresh(value, column: column)
    }

    /// Writes `value` as new YAML continuing the current line, later lines at `column`.
    private mutating func fresh(_ value: JSON, column: Int) {
        output.append(fragment: fragments.text(of: value, column: column, newline: newline))
    }

    /// A new `key: value` entry, starting at the current position (the key's column).
    private mutating func freshEntry(_ key: String, _ value: JSON, column: Int) {
        fresh(.object(JSONObject([(key, value)])), column: column)
    }

    /// Rewrites a block mapping entry by entry; false (having written nothing) when its layout is
    /// one this does not edit in place (keys not each at the start of a line, merge keys, aliases).
    /// Without merge keys, the old value's members are the keys' in order. The keys are walked
    /// in the tree rather than gathered, and each is first looked for at its own position in
    /// the new value, where an edit leaves it (a mapping is rewritten for each document of a
    /// stream, and the gathering and searching were most of its cost).
    private mutating func mapping(_ node: Int, from old: JSONObject, to object: JSONObject) -> Bool {
        let column = column(node)
        let limit = tree.nodes[node].next
        var key = node + 1
        while key < limit {
            guard case .scalar = tree.nodes[key].kind, !tree.nodes[key].isMergeKey, tree.nodes[key].start.column == column
            else { return false }
            if key > node + 1, !SourceText.isBlank(lineStart(start(key))..<start(key), in: source) { return false }
            key = tree.nodes[tree.nodes[key].next].next
        }
        let oldMembers = old.storage
        let newMembers = object.storage
        // Whether each old key stands at its own position in the new value.
        var inPlace = newMembers.count >= oldMembers.count
        var wroteAny = false
        var previousKey: Int?
        key = node + 1
        for index in oldMembers.indices where key < limit {
            let name = oldMembers[index].key
            let newValue: JSON?
            if index < newMembers.count, newMembers[index].key == name {
                newValue = newMembers[index].value
            } else {
                inPlace = false
                newValue = object[name]
            }
            if let newValue {
                // After an entry written, from the line's start, with what lay between; else
                // from the key itself.
                let from: Int
                if wroteAny, let previousKey {
                    from = lineStart(start(key))
                    copy(lineEnd(end(tree.nodes[previousKey].next))..<from)
                } else {
                    from = start(key)
                }
                entry(key: key, name: name, from: oldMembers[index].value, to: newValue, at: from, column: column)
                wroteAny = true
            }
            previousKey = key
            key = tree.nodes[tree.nodes[key].next].next
        }
        // In place, the new keys are the members after the old ones.
        for index in newMembers.indices where inPlace ? index >= oldMembers.count : old.index(forKey: newMembers[index].key) == nil {
            if wroteAny { indent(column) }
            freshEntry(newMembers[index].key, newMembers[index].value, column: column)
            wroteAny = true
        }
        return true
    }

    /// Rewrites one `key: value` entry, from `start` (its key, or the line it is on).
    private mutating func entry(key: Int, name: String, from oldValue: JSON, to newValue: JSON, at start: Int, column: Int) {
        let value = tree.nodes[key].next
        let end = lineEnd(self.end(value))
        if oldValue == newValue {
            copy(start..<end)
            return
        }
        let isEmptyFlow = tree.nodes[value].isFlow && oldValue.isEmptyCollection
        switch (tree.nodes[value].kind, newValue) {
        case (.mapping, .object) where Self.isNonEmptyCollection(newValue) && !isEmptyFlow,
             (.sequence, .array) where Self.isNonEmptyCollection(newValue) && !isEmptyFlow:
            copy(start..<self.start(value))
            rewriteChanged(value, from: oldValue, to: newValue, column: self.column(value))
            copy(self.end(value)..<end)
        case (.scalar, _) where Self.isInlineScalar(newValue):
            // Keep the key as written and any comment after the value.
            copy(start..<self.start(value))
            if self.start(value) == self.end(value) { output.append(UInt8(ascii: " ")) }
            fresh(newValue, column: column)
            copy(self.end(value)..<end)
        default:
            copy(start..<self.start(key))
            freshEntry(name, newValue, column: column)
        }
    }

    private func sameKind(_ node: Int, _ value: JSON) -> Bool {
        switch (tree.nodes[node].kind, value) {
        case (.mapping, .object), (.sequence, .array): return true
        default: return false
        }
    }

    /// Rewrites a flow collection (`[a, b]`, `{k: v}`) in place: kept items keep their text and
    /// the separators between them; new items are written in flow style.
    private mutating func flow(_ node: Int, from old: JSON, to value: JSON) {
        if old == value {
            copy(start(node)..<end(node))
            return
        }
        let isTagged = tree.nodes[node].tag != nil
        switch (tree.nodes[node].kind, old, value) {
        case (.sequence, .array(let oldItems), .array(let array)) where !isTagged && hasChildren(node) && !array.isEmpty:
            let items = children(of: node)
            let matches = Self.match(old: oldItems, new: array)
            copy(start(node)..<start(items[0]))
            var previousOld: Int?
            for (newIndex, newValue) in array.enumerated() {
                if let oldIndex = matches[newIndex] {
                    if newIndex > 0 {
                        if let previousOld, previousOld == oldIndex - 1 {
                            copy(end(items[previousOld])..<start(items[oldIndex]))
                        } else {
                            output.append(contentsOf: ", ".utf8)
                        }
                    }
                    flow(items[oldIndex], from: oldItems[oldIndex], to: newValue)
                    previousOld = oldIndex
                } else {
                    if newIndex > 0 { output.append(contentsOf: ", ".utf8) }
                    freshFlow(newValue)
                    previousOld = nil
                }
            }
            copy(end(items[items.count - 1])..<end(node))
        case (.mapping, .object(let oldObject), .object(let object)) where !isTagged && hasChildren(node) && !object.isEmpty:
            let children = children(of: node)
            let keys = stride(from: 0, to: children.count, by: 2).map { children[$0] }
            let values = keys.map { tree.nodes[$0].next }
            guard keys.allSatisfy({ !tree.nodes[$0].isMergeKey }), values.allSatisfy({ end($0) > start($0) }) else {
                freshFlow(value)
                return
            }
            // Without merge keys, the old value's members are the keys' in order.
            let names = oldObject.keys
            copy(start(node)..<start(keys[0]))
            var wroteAny = false
            var previousOld: Int?
            for index in keys.indices {
                guard let newValue = object[names[index]] else { continue }
                if wroteAny {
                    if let previousOld, previousOld == index - 1 {
                        copy(end(values[previousOld])..<start(keys[index]))
                    } else {
                        output.append(contentsOf: ", ".utf8)
                    }
                }
                copy(start(keys[index])..<start(values[index]))
                flow(values[index], from: oldObject.members[index].value, to: newValue)
                previousOld = index
                wroteAny = true
            }
            for (name, newValue) in object.members where !names.contains(name) {
                if wroteAny { output.append(contentsOf: ", ".utf8) }
                freshFlow(.string(name))
                output.append(contentsOf: ": ".utf8)
                freshFlow(newValue)
                wroteAny = true
            }
            copy(end(values[values.count - 1])..<end(node))
        default:
            freshFlow(value)
        }
    }

    /// A value written for a flow context: a plain scalar where that reads back the same and
    /// holds no flow indicator, otherwise JSON, which YAML reads as flow style.
    private mutating func freshFlow(_ value: JSON) {
        if case .string(let text) = value, !ScalarResolver.mustQuote(text) {
            let written = fragments.text(of: value, column: 1, newline: newline)
            if written.elementsEqual(text.utf8),
               !written.contains(where: { ",[]{}#\"'".utf8.contains($0) }), !text.contains(": ") {
                output.append(contentsOf: written)
                return
            }
        }
        output.append(contentsOf: JSONWriter.write(value))
    }

    private static func isNonEmptyCollection(_ value: JSON) -> Bool {
        switch value {
        case .array, .object: return !value.isEmptyCollection
        default: return false
        }
    }

    private static func isInlineScalar(_ value: JSON) -> Bool {
        switch value {
        case .array, .object: return false
        case .string(let text): return !text.utf8.contains(UInt8(ascii: "\n"))
        case .null, .bool, .number: return true
        }
    }

    /// Rewrites a block sequence item by item, keeping items that survive (matched by `name` for
    /// lists of named objects, else by value) in place with their comments. False, having
    /// written nothing, when an item does not start on its own `- ` line.
    private mutating func sequence(_ node: Int, from old: [JSON], to array: [JSON]) -> Bool {
        let column = column(node)
        let items = children(of: node)
        var dashes: [Int] = []
        dashes.reserveCapacity(items.count)
        for item in items {
            let lineBegin = lineStart(start(item))
            let dash = lineBegin + column - 1
            guard start(item) > dash, source[dash] == UInt8(ascii: "-"),
                  SourceText.isBlank(lineBegin..<dash, in: source),
                  SourceText.isBlank(dash + 1..<start(item), in: source)
            else { return false }
            dashes.append(dash)
        }
        let matches = Self.match(old: old, new: array)
        var wroteAny = false
        var previousOld: Int?
        for (newIndex, newValue) in array.enumerated() {
            if let oldIndex = matches[newIndex] {
                let item = items[oldIndex]
                if wroteAny {
                    if let previousOld, previousOld == oldIndex - 1 {
                        copy(lineEnd(end(items[previousOld]))..<dashes[oldIndex])
                    } else {
                        indent(column)
                    }
                }
                copy(dashes[oldIndex]..<start(item))
                rewrite(item, from: old[oldIndex], to: newValue, column: self.column(item))
                copy(end(item)..<lineEnd(end(item)))
                previousOld = oldIndex
            } else {
                if wroteAny { indent(column) }
                output.append(contentsOf: "- ".utf8)
                fresh(newValue, column: column + 2)
                previousOld = nil
            }
            wroteAny = true
        }
        return true
    }

    /// For each new item, the old item it continues, if any; matched old indices only increase.
    /// Items with an identity (a `name`, or a Kubernetes object's kind and name) match by it;
    /// others by equal value within a short look-ahead, so matching stays linear for long lists
    /// such as 1,500 environment variables; and when what is left of both lists is equally long,
    /// an unmatched item continues the old one in its place (an edited item).
    static func match(old: [JSON], new: [JSON]) -> [Int?] {
        let oldIdentities = old.map(Identity.init)
        var byIdentity: [Identity: Int] = [:]
        for (index, identity) in oldIdentities.enumerated() {
            if let identity, byIdentity[identity] == nil { byIdentity[identity] = index }
        }
        let lookAhead = 64
        var next = 0
        var result: [Int?] = []
        result.reserveCapacity(new.count)
        for (newIndex, value) in new.enumerated() {
            var found: Int?
            let identity = Identity(value)
            if let identity {
                if let index = byIdentity[identity], index >= next { found = index }
            } else {
                var index = next
                while index < old.count, index < next + lookAhead {
                    if old[index] == value {
                        found = index
                        break
                    }
                    index += 1
                }
            }
            if found == nil, next < old.count, old.count - next == new.count - newIndex,
               oldIdentities[next] == nil || identity == nil {
                found = next
            }
            if let found { next = found + 1 }
            result.append(found)
        }
        return result
    }

    /// What makes a list item the same item after an edit: its `name`, or a Kubernetes object's
    /// kind and name.
    private enum Identity: Hashable {
        case name(String)
        case object(kind: String, name: String)

        init?(_ value: JSON) {
            guard case .object(let object) = value else { return nil }
            if let name = object["name"]?.stringValue {
                self = .name(name)
            } else if let kind = object["kind"]?.stringValue, let name = object["metadata"]?["name"]?.stringValue {
                self = .object(kind: kind, name: name)
            } else {
                return nil
            }
        }
    }
}

extension JSON {
    /// `[]` or `{}`: written in flow style, and replaced whole (in block style) when filled.
    var isEmptyCollection: Bool {
        switch self {
        case .array(let array): return array.isEmpty
        case .object(let object): return object.isEmpty
        default: return false
        }
    }
}
