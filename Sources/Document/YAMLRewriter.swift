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

    /// Appends to `output` the text of `document` (its whole byte range in `source`) with its
    /// value replaced by `value`. A stream's documents all go into one buffer.
    public func rewrite(_ document: YAMLDocument, in source: [UInt8], to value: JSON, into output: inout [UInt8]) {
        guard let root = document.root, root.json != value else {
            output.append(contentsOf: source[document.range])
            return
        }
        var splicer = Splicer(source: source, fragments: fragments)
        swap(&output, &splicer.output)
        defer { swap(&output, &splicer.output) }
        splicer.copy(document.range.lowerBound..<root.start.offset)
        splicer.rewrite(root, value, column: root.start.column)
        splicer.copy(root.end..<document.range.upperBound)
    }
}

/// A bounded memo of values written as YAML and laid out at a column.
private final class FragmentCache {
    /// A fragment where it goes. The value is hashed by its top levels only: fragments recur
    /// whole (the same proxy container for every workload), the top levels tell them apart, and
    /// `==`, which returns at once for values that share storage, settles the rest. Hashing every
    /// leaf cost more than writing the lines.
    private struct Key: Hashable {
        let value: JSON
        let column: Int
        let newline: [UInt8]

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.column == rhs.column && lhs.newline == rhs.newline && lhs.value == rhs.value
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(column)
            hasher.combine(newline)
            Self.combine(value, depth: 2, into: &hasher)
        }

        /// Agrees with `==`: objects are hashed member by member and summed, as their order
        /// does not count.
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
                var sum = 0
                for (key, member) in object.members {
                    var memberHasher = Hasher()
                    memberHasher.combine(key)
                    combine(member, depth: depth - 1, into: &memberHasher)
                    sum &+= memberHasher.finalize()
                }
                hasher.combine(sum)
            }
        }
    }

    private static let capacity = 256
    private var texts: [Key: [UInt8]] = [:]

    /// `value` written as YAML continuing the current line, its later lines indented to `column`.
    func text(of value: JSON, column: Int, newline: [UInt8]) -> [UInt8] {
        let key = Key(value: value, column: column, newline: newline)
        if let cached = texts[key] { return cached }
        var text: [UInt8] = []
        for (index, line) in YAMLWriter.lines(of: value).enumerated() {
            if index > 0 {
                text.append(contentsOf: newline)
                if !line.isEmpty { text.append(contentsOf: repeatElement(UInt8(ascii: " "), count: column - 1)) }
            }
            text.append(contentsOf: line)
        }
        if texts.count >= Self.capacity { texts.removeAll(keepingCapacity: true) }
        texts[key] = text
        return text
    }
}

struct Splicer {
    let source: [UInt8]
    let newline: [UInt8]
    var output: [UInt8] = []
    private let fragments: FragmentCache

    fileprivate init(source: [UInt8], fragments: FragmentCache) {
        self.source = source
        self.fragments = fragments
        let firstBreak = source.firstIndex(of: UInt8(ascii: "\n"))
        if let firstBreak, firstBreak > 0, source[firstBreak - 1] == UInt8(ascii: "\r") {
            newline = [UInt8(ascii: "\r"), UInt8(ascii: "\n")]
        } else {
            newline = [UInt8(ascii: "\n")]
        }
    }

    mutating func copy(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        output.append(contentsOf: source[range])
    }

    private mutating func indent(_ column: Int) {
        output.append(contentsOf: newline)
        output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: column - 1))
    }

    private func lineEnd(_ offset: Int) -> Int { SourceText.lineEnd(after: offset, in: source) }
    private func lineStart(_ offset: Int) -> Int { SourceText.lineStart(of: offset, in: source) }

    /// Writes the replacement of `node`'s text. Fresh lines after the first start at `column`.
    mutating func rewrite(_ node: YAMLNode, _ value: JSON, column: Int) {
        if node.json == value {
            copy(node.start.offset..<node.end)
            return
        }
        if node.isFlow, node.tag == nil, !node.json.isEmptyCollection, Self.isNonEmptyCollection(value), Self.sameKind(node, value) {
            flow(node, value)
            return
        }
        if !node.isFlow, node.tag == nil {
            switch (node.content, value) {
            case (.mapping(let keys, let values), .object(let object)) where !object.isEmpty:
                if mapping(node, keys: keys, values: values, object) { return }
            case (.sequence(let items), .array(let array)) where !array.isEmpty:
                if sequence(node, items: items, array) { return }
            default:
                break
            }
        }
        fresh(value, column: column)
    }

    /// Writes `value` as new YAML continuing the current line, later lines at `column`.
    private mutating func fresh(_ value: JSON, column: Int) {
        output.append(contentsOf: fragments.text(of: value, column: column, newline: newline))
    }

    /// A new `key: value` entry, starting at the current position (the key's column).
    private mutating func freshEntry(_ key: String, _ value: JSON, column: Int) {
        fresh(.object(JSONObject([(key, value)])), column: column)
    }

    /// Rewrites a block mapping entry by entry; false (having written nothing) when its layout is
    /// one this does not edit in place (keys not each at the start of a line, merge keys, aliases).
    private mutating func mapping(_ node: YAMLNode, keys: [YAMLNode], values: [YAMLNode], _ object: JSONObject) -> Bool {
        let column = node.start.column
        var names: [String] = []
        names.reserveCapacity(keys.count)
        for (index, key) in keys.enumerated() {
            guard case .scalar = key.content, !key.isMergeKey, key.start.column == column,
                  let name = key.json.keyText else { return false }
            if index > 0, !SourceText.isBlank(lineStart(key.start.offset)..<key.start.offset, in: source) { return false }
            names.append(name)
        }
        var wroteAny = false
        for index in keys.indices {
            guard let newValue = object[names[index]] else { continue }
            var start = index == 0 ? node.start.offset : lineStart(keys[index].start.offset)
            if wroteAny {
                copy(lineEnd(values[index - 1].end)..<start)
            } else {
                start = keys[index].start.offset
            }
            entry(key: keys[index], name: names[index], value: values[index], newValue, from: start, column: column)
            wroteAny = true
        }
        for (name, newValue) in object.members where !names.contains(name) {
            if wroteAny { indent(column) }
            freshEntry(name, newValue, column: column)
            wroteAny = true
        }
        return true
    }

    private mutating func entry(key: YAMLNode, name: String, value: YAMLNode, _ newValue: JSON, from start: Int, column: Int) {
        let end = lineEnd(value.end)
        if value.json == newValue {
            copy(start..<end)
            return
        }
        switch (value.content, newValue) {
        case (.mapping, .object) where Self.isNonEmptyCollection(newValue) && !(value.isFlow && value.json.isEmptyCollection),
             (.sequence, .array) where Self.isNonEmptyCollection(newValue) && !(value.isFlow && value.json.isEmptyCollection):
            copy(start..<value.start.offset)
            rewrite(value, newValue, column: value.start.column)
            copy(value.end..<end)
        case (.scalar, _) where Self.isInlineScalar(newValue):
            // Keep the key as written and any comment after the value.
            copy(start..<value.start.offset)
            if value.start.offset == value.end { output.append(UInt8(ascii: " ")) }
            fresh(newValue, column: column)
            copy(value.end..<end)
        default:
            copy(start..<key.start.offset)
            freshEntry(name, newValue, column: column)
        }
    }

    private static func sameKind(_ node: YAMLNode, _ value: JSON) -> Bool {
        switch (node.content, value) {
        case (.mapping, .object), (.sequence, .array): return true
        default: return false
        }
    }

    /// Rewrites a flow collection (`[a, b]`, `{k: v}`) in place: kept items keep their text and
    /// the separators between them; new items are written in flow style.
    private mutating func flow(_ node: YAMLNode, _ value: JSON) {
        if node.json == value {
            copy(node.start.offset..<node.end)
            return
        }
        switch (node.content, value) {
        case (.sequence(let items), .array(let array)) where node.tag == nil && !items.isEmpty && !array.isEmpty:
            let matches = Self.match(old: items.map(\.json), new: array)
            copy(node.start.offset..<items[0].start.offset)
            var previousOld: Int?
            for (newIndex, newValue) in array.enumerated() {
                if let oldIndex = matches[newIndex] {
                    if newIndex > 0 {
                        if let previousOld, previousOld == oldIndex - 1 {
                            copy(items[previousOld].end..<items[oldIndex].start.offset)
                        } else {
                            output.append(contentsOf: ", ".utf8)
                        }
                    }
                    flow(items[oldIndex], newValue)
                    previousOld = oldIndex
                } else {
                    if newIndex > 0 { output.append(contentsOf: ", ".utf8) }
                    freshFlow(newValue)
                    previousOld = nil
                }
            }
            copy(items[items.count - 1].end..<node.end)
        case (.mapping(let keys, let values), .object(let object)) where node.tag == nil && !keys.isEmpty && !object.isEmpty:
            guard keys.allSatisfy({ !$0.isMergeKey && $0.json.keyText != nil }),
                  values.allSatisfy({ $0.end > $0.start.offset })
            else {
                freshFlow(value)
                return
            }
            let names = keys.map { $0.json.keyText ?? "" }
            copy(node.start.offset..<keys[0].start.offset)
            var wroteAny = false
            var previousOld: Int?
            for index in keys.indices {
                guard let newValue = object[names[index]] else { continue }
                if wroteAny {
                    if let previousOld, previousOld == index - 1 {
                        copy(values[previousOld].end..<keys[index].start.offset)
                    } else {
                        output.append(contentsOf: ", ".utf8)
                    }
                }
                copy(keys[index].start.offset..<values[index].start.offset)
                flow(values[index], newValue)
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
            copy(values[values.count - 1].end..<node.end)
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
        JSONWriter.write(value, into: &output)
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
    private mutating func sequence(_ node: YAMLNode, items: [YAMLNode], _ array: [JSON]) -> Bool {
        let column = node.start.column
        var dashes: [Int] = []
        dashes.reserveCapacity(items.count)
        for item in items {
            let lineBegin = lineStart(item.start.offset)
            let dash = lineBegin + column - 1
            guard item.start.offset > dash, source[dash] == UInt8(ascii: "-"),
                  SourceText.isBlank(lineBegin..<dash, in: source),
                  SourceText.isBlank(dash + 1..<item.start.offset, in: source)
            else { return false }
            dashes.append(dash)
        }
        let matches = Self.match(old: items.map(\.json), new: array)
        var wroteAny = false
        var previousOld: Int?
        for (newIndex, newValue) in array.enumerated() {
            if let oldIndex = matches[newIndex] {
                let old = items[oldIndex]
                if wroteAny {
                    if let previousOld, previousOld == oldIndex - 1 {
                        copy(lineEnd(items[previousOld].end)..<dashes[oldIndex])
                    } else {
                        indent(column)
                    }
                }
                copy(dashes[oldIndex]..<old.start.offset)
                rewrite(old, newValue, column: old.start.column)
                copy(old.end..<lineEnd(old.end))
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
        var byIdentity: [String: Int] = [:]
        for (index, value) in old.enumerated() {
            if let identity = identity(of: value), byIdentity[identity] == nil { byIdentity[identity] = index }
        }
        let lookAhead = 64
        var next = 0
        var result: [Int?] = []
        result.reserveCapacity(new.count)
        for (newIndex, value) in new.enumerated() {
            var found: Int?
            if let identity = identity(of: value) {
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
               identity(of: old[next]) == nil || identity(of: value) == nil {
                found = next
            }
            if let found { next = found + 1 }
            result.append(found)
        }
        return result
    }

    private static func identity(of value: JSON) -> String? {
        if let name = value["name"]?.stringValue { return "name:" + name }
        if let kind = value["kind"]?.stringValue, let name = value["metadata"]?["name"]?.stringValue {
            return "object:" + kind + "/" + name
        }
        return nil
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
