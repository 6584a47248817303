/// An RFC 6902 JSON Patch: what an admission webhook returns to change a pod.
///
/// The apiserver fails pod creation on any patch that does not apply, whatever the webhook's
/// failure policy, so `apply` is exact about errors and `diff` produces patches that are proven
/// by construction to turn one document into the other.
public struct JSONPatch: Sendable, Equatable {
    public var operations: [JSONPatchOperation]

    public init(_ operations: [JSONPatchOperation] = []) {
        self.operations = operations
    }

    public var isEmpty: Bool { operations.isEmpty }
}

public enum JSONPatchOperation: Sendable, Equatable {
    case add(path: JSONPointer, value: JSON)
    case remove(path: JSONPointer)
    case replace(path: JSONPointer, value: JSON)
    case move(from: JSONPointer, path: JSONPointer)
    case copy(from: JSONPointer, path: JSONPointer)
    case test(path: JSONPointer, value: JSON)

    /// The `op` member's value.
    public var name: String {
        switch self {
        case .add: "add"
        case .remove: "remove"
        case .replace: "replace"
        case .move: "move"
        case .copy: "copy"
        case .test: "test"
        }
    }

    public var path: JSONPointer {
        switch self {
        case .add(let path, _), .remove(let path), .replace(let path, _), .move(_, let path),
             .copy(_, let path), .test(let path, _):
            path
        }
    }
}

/// Why a patch could not be read or applied; `operationIndex` is the 0-based index of the
/// failing operation, nil when the patch as a whole is malformed.
public struct JSONPatchError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operationIndex: Int?
    public var message: String

    public init(operationIndex: Int?, message: String) {
        self.operationIndex = operationIndex
        self.message = message
    }

    public var description: String {
        guard let operationIndex else { return message }
        return "operation \(operationIndex): \(message)"
    }
}

// MARK: - To and from JSON

extension JSONPatch {
    /// The patch as the JSON array the apiserver expects: `{"op","path","value"}` or
    /// `{"op","from","path"}` objects.
    public var json: JSON {
        .array(operations.map(\.json))
    }

    /// Appends the text of `json` as `JSONWriter` writes it, without building the value first:
    /// the webhook writes one patch per admission. Objects in `texts` are copied as written there.
    public func write(into buffer: inout [UInt8], reusing texts: JSONWrittenTexts = JSONWrittenTexts([])) {
        var patch = self
        var copies: [JSONWrittenTexts.Copy] = []
        patch.write(into: &buffer, reusing: texts, copies: &copies)
    }

    /// As `write(into:reusing:)`, noting in `copies` where each object of `texts` went.
    /// Mutating only to take each operation out while it is written and put it back: read in
    /// place, each was copied (its path and value retained and released) for the calls that
    /// write it, which the optimiser cannot tell leave the patch alone.
    public mutating func write(into buffer: inout [UInt8], reusing texts: JSONWrittenTexts,
                               copies: inout [JSONWrittenTexts.Copy]) {
        buffer.append(UInt8(ascii: "["))
        // One placeholder holds each place in turn.
        var operation = JSONPatchOperation.remove(path: JSONPointer(tokens: []))
        for index in operations.indices {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            swap(&operation, &operations[index])
            operation.write(into: &buffer, reusing: texts, copies: &copies)
            swap(&operation, &operations[index])
        }
        buffer.append(UInt8(ascii: "]"))
    }

    public init(json: JSON) throws(JSONPatchError) {
        guard case .array(let elements) = json else {
            throw JSONPatchError(operationIndex: nil, message: "a JSON patch must be an array, got \(json.typeName)")
        }
        var operations: [JSONPatchOperation] = []
        operations.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            do throws(JSONPatchError) {
                operations.append(try JSONPatchOperation(json: element))
            } catch {
                throw JSONPatchError(operationIndex: index, message: error.message)
            }
        }
        self.init(operations)
    }
}

extension JSONPatchOperation {
    /// Appends the operation's object (see `JSONPatch.write(into:reusing:copies:)`).
    borrowing func write(into buffer: inout [UInt8], reusing texts: JSONWrittenTexts, copies: inout [JSONWrittenTexts.Copy]) {
        // Pointers are written as bytes, never made into strings. Each run of fixed text is
        // appended in one piece: an append costs about eighty instructions, however short. A
        // pointer goes in one piece with the texts before and after it and its quotes, unless it
        // has a character JSON escapes, which `JSONWriter` then writes.
        func append(_ text: StaticString, _ pointer: JSONPointer, _ after: StaticString) {
            text.withUTF8Buffer { text in
                after.withUTF8Buffer { after in
                    pointer.withText(room: text.count + 1, 1 + after.count) { scratch, pointerRange in
                        let pointerText = UnsafeBufferPointer(rebasing: scratch[pointerRange])
                        guard TextScan.plainRun(in: pointerText, from: 0).end == pointerText.count else {
                            buffer.append(contentsOf: text)
                            JSONWriter.writeString(utf8: pointerText, into: &buffer)
                            buffer.append(contentsOf: after)
                            return
                        }
                        _ = scratch.initialize(fromContentsOf: text)
                        scratch[text.count] = UInt8(ascii: "\"")
                        scratch[pointerRange.upperBound] = UInt8(ascii: "\"")
                        let end = pointerRange.upperBound + 1
                        _ = UnsafeMutableBufferPointer(rebasing: scratch[end...]).initialize(fromContentsOf: after)
                        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<(end + after.count)]))
                    }
                }
            }
        }
        func append(value: JSON) {
            JSONWriter.write(value, into: &buffer, reusing: texts, copies: &copies)
            buffer.append(UInt8(ascii: "}"))
        }
        switch self {
        case .add(let path, let value):
            append(#"{"op":"add","path":"#, path, #","value":"#)
            append(value: value)
        case .replace(let path, let value):
            append(#"{"op":"replace","path":"#, path, #","value":"#)
            append(value: value)
        case .test(let path, let value):
            append(#"{"op":"test","path":"#, path, #","value":"#)
            append(value: value)
        case .remove(let path):
            append(#"{"op":"remove","path":"#, path, "}")
        case .move(let from, let path):
            append(#"{"op":"move","from":"#, from, "")
            append(#","path":"#, path, "}")
        case .copy(let from, let path):
            append(#"{"op":"copy","from":"#, from, "")
            append(#","path":"#, path, "}")
        }
    }

    public var json: JSON {
        var object = JSONObject()
        object.appendUnchecked(key: "op", value: .string(name))
        switch self {
        case .add(let path, let value), .replace(let path, let value), .test(let path, let value):
            object.appendUnchecked(key: "path", value: .string(path.description))
            object.appendUnchecked(key: "value", value: value)
        case .remove(let path):
            object.appendUnchecked(key: "path", value: .string(path.description))
        case .move(let from, let path), .copy(let from, let path):
            object.appendUnchecked(key: "from", value: .string(from.description))
            object.appendUnchecked(key: "path", value: .string(path.description))
        }
        return .object(object)
    }

    /// Reads one operation object; members other than the ones the op needs are ignored, as
    /// RFC 6902 requires.
    public init(json: JSON) throws(JSONPatchError) {
        guard case .object(let object) = json else {
            throw JSONPatchError(operationIndex: nil, message: "an operation must be an object, got \(json.typeName)")
        }
        func pointer(_ member: String) throws(JSONPatchError) -> JSONPointer {
            guard let value = object[member] else {
                throw JSONPatchError(operationIndex: nil, message: "missing \"\(member)\"")
            }
            guard case .string(let text) = value else {
                throw JSONPatchError(operationIndex: nil, message: "\"\(member)\" must be a string, got \(value.typeName)")
            }
            do throws(JSONPointerError) {
                return try JSONPointer(parsing: text)
            } catch {
                throw JSONPatchError(operationIndex: nil, message: "\"\(member)\": \(error.message)")
            }
        }
        func value() throws(JSONPatchError) -> JSON {
            guard let value = object["value"] else {
                throw JSONPatchError(operationIndex: nil, message: "missing \"value\"")
            }
            return value
        }
        guard let op = object["op"] else {
            throw JSONPatchError(operationIndex: nil, message: "missing \"op\"")
        }
        switch op {
        case "add": self = .add(path: try pointer("path"), value: try value())
        case "remove": self = .remove(path: try pointer("path"))
        case "replace": self = .replace(path: try pointer("path"), value: try value())
        case "move": self = .move(from: try pointer("from"), path: try pointer("path"))
        case "copy": self = .copy(from: try pointer("from"), path: try pointer("path"))
        case "test": self = .test(path: try pointer("path"), value: try value())
        case .string(let name):
            throw JSONPatchError(operationIndex: nil, message: "unknown op \"\(name)\"")
        default:
            throw JSONPatchError(operationIndex: nil, message: "\"op\" must be a string, got \(op.typeName)")
        }
    }
}

// MARK: - Apply

extension JSONPatch {
    /// Applies every operation in order to a copy of `document`. Either all apply and the result
    /// is returned, or the first failure is thrown and `document` is untouched.
    /// Consuming, so that a caller that gives up its only reference to the document has it
    /// changed in place rather than copied along every path the patch takes; and one that gives
    /// up its patch has each operation moved out of it and its value moved into the document,
    /// where a copy of each retained and released its path and value twice over.
    public consuming func apply(to document: consuming JSON) throws(JSONPatchError) -> JSON {
        var result = consume document
        var patch = consume self
        for index in patch.operations.indices {
            var operation = JSONPatchOperation.remove(path: JSONPointer(tokens: []))
            swap(&operation, &patch.operations[index])
            do throws(JSONPointerError) {
                try (consume operation).apply(to: &result)
            } catch {
                throw JSONPatchError(operationIndex: index, message: error.message)
            }
        }
        return result
    }
}

extension JSONPatchOperation {
    /// Consuming, so that the value added or put in place is moved into the document. A failure
    /// names the operation and its path, taken where each case has the path at hand: a copy of it
    /// kept aside for the message cost a retain and a release for every operation.
    consuming func apply(to document: inout JSON) throws(JSONPointerError) {
        let name = self.name
        func failure(_ error: JSONPointerError, _ path: JSONPointer) -> JSONPointerError {
            JSONPointerError("\(name) \(path.isRoot ? "\"\"" : path.description): \(error.message)")
        }
        switch consume self {
        case .add(let path, let value):
            do { try Self.add(consume value, at: path, in: &document) } catch { throw failure(error, path) }
        case .remove(let path):
            do { _ = try Self.remove(at: path, in: &document) } catch { throw failure(error, path) }
        case .replace(let path, let value):
            var replacement = Replacement(value: consume value)
            do {
                try Self.modify(&document, at: path, tokenCount: path.tokens.count, &replacement)
            } catch {
                throw failure(error, path)
            }
        case .move(let from, let path):
            do { try Self.move(from: from, to: path, in: &document) } catch { throw failure(error, path) }
        case .copy(let from, let path):
            do { try Self.add(try document.value(at: from), at: path, in: &document) } catch { throw failure(error, path) }
        case .test(let path, let expected):
            do { try Self.test(document, at: path, is: expected) } catch { throw failure(error, path) }
        }
    }

    static func move(from: JSONPointer, to path: JSONPointer, in document: inout JSON) throws(JSONPointerError) {
        if from == path {
            _ = try document.value(at: from)
            return
        }
        if from.isProperPrefix(of: path) {
            throw JSONPointerError("cannot move \(from) into one of its own members")
        }
        let value = try Self.remove(at: from, in: &document)
        try Self.add(value, at: path, in: &document)
    }

    static func test(_ document: JSON, at path: JSONPointer, is expected: JSON) throws(JSONPointerError) {
        let actual = try document.value(at: path)
        guard actual.isEqualForPatchTest(to: expected) else {
            throw JSONPointerError("test failed: the value at \(path) is \(actual.shortDescription), expected \(expected.shortDescription)")
        }
    }

    /// Adds a member (replacing one of the same name) or inserts an array element; `-` appends.
    static func add(_ value: consuming JSON, at path: JSONPointer, in document: inout JSON) throws(JSONPointerError) {
        guard !path.isRoot else {
            document = value
            return
        }
        var addition = Addition(value: value)
        try modify(&document, at: path, tokenCount: path.tokens.count - 1, &addition)
    }

    /// Removes the value at `path` and returns it.
    static func remove(at path: JSONPointer, in document: inout JSON) throws(JSONPointerError) -> JSON {
        guard !path.isRoot else {
            throw JSONPointerError("cannot remove the document root")
        }
        var removal = Removal()
        try modify(&document, at: path, tokenCount: path.tokens.count - 1, &removal)
        return removal.removed
    }

    /// Makes `edit` in place on the value named by the first `tokenCount` tokens of `path` (all of
    /// them for the value itself, all but the last for its container). Each container on the way
    /// is detached from its parent while it changes, so only the containers on the path that are
    /// shared are copied, never the rest of the document, and a document held nowhere else is
    /// changed in place. `if case` rather than `switch`, which would keep a second reference to
    /// each container and so copy every one. The edit is passed `inout` and each child is taken
    /// out of its object rather than changed in a closure: closures around the next level copied
    /// (retained) the path and the value being added at every level, three times each.
    static func modify<Edit: PathEdit>(_ value: inout JSON, at path: JSONPointer, depth: Int = 0, tokenCount: Int,
                                       _ edit: inout Edit) throws(JSONPointerError) {
        guard depth < tokenCount else {
            try edit.apply(to: &value, at: path)
            return
        }
        let token = path.tokens[depth]
        if case .object(var object) = value {
            guard let position = object.index(forKey: token) else {
                throw JSONPointer.notFound(path, depth: depth, "no member \"\(token)\"")
            }
            value = .null
            var child = JSON.null
            object.modifyValue(at: position) { swap(&$0, &child) }
            defer {
                object.modifyValue(at: position) { swap(&$0, &child) }
                value = .object(object)
            }
            try modify(&child, at: path, depth: depth + 1, tokenCount: tokenCount, &edit)
        } else if case .array(var elements) = value {
            let index = try JSONPointer.existingIndex(token, count: elements.count, in: path, depth: depth)
            value = .null
            defer { value = .array(elements) }
            try modify(&elements[index], at: path, depth: depth + 1, tokenCount: tokenCount, &edit)
        } else {
            throw JSONPointer.notFound(path, depth: depth, "\(value.typeName) has no members")
        }
    }
}

/// The change an operation makes at the end of its path, to the value there or to its container.
protocol PathEdit {
    mutating func apply(to target: inout JSON, at path: JSONPointer) throws(JSONPointerError)
}

/// Replaces the value at the path.
private struct Replacement: PathEdit {
    var value: JSON

    /// The value moved in, not copied: the edit is made once.
    mutating func apply(to target: inout JSON, at path: JSONPointer) {
        swap(&target, &value)
    }
}

/// Adds a member to the container at the path's parent, or inserts an element into it.
private struct Addition: PathEdit {
    /// Taken (`JSON.take`) when the edit is made, which is once: a copy cost a retain and a release.
    var value: JSON

    // `if case`, not `switch`: a switch keeps a second reference to the container while it
    // changes, so the change copies it (see `modify`).
    mutating func apply(to container: inout JSON, at path: JSONPointer) throws(JSONPointerError) {
        let last = path.tokens[path.tokens.count - 1]
        if case .object(var object) = container {
            container = .null
            object[last] = value.take()
            container = .object(object)
        } else if case .array(var elements) = container {
            let index: Int
            if last == "-" {
                index = elements.count
            } else if let parsed = JSONPointer.arrayIndex(last) {
                guard parsed <= elements.count else {
                    throw JSONPointerError("index \(parsed) is out of range for adding to the array of \(elements.count) elements at \(path.parent)")
                }
                index = parsed
            } else {
                throw JSONPointerError("\"\(last)\" is not an array index at \(path.parent)")
            }
            container = .null
            // Appending (`-`, the usual add) costs half of inserting at the end.
            if index == elements.count {
                elements.append(value.take())
            } else {
                elements.insert(value.take(), at: index)
            }
            container = .array(elements)
        } else {
            throw JSONPointerError("cannot add to \(container.typeName) at \(path.parent)")
        }
    }
}

/// Removes a member or an element from the container at the path's parent, keeping it.
private struct Removal: PathEdit {
    var removed = JSON.null

    mutating func apply(to container: inout JSON, at path: JSONPointer) throws(JSONPointerError) {
        let last = path.tokens[path.tokens.count - 1]
        // Looking the value up first also proves that an array token is a valid index.
        removed = try container.child(last, in: path, depth: path.tokens.count - 1)
        if case .object(var object) = container {
            container = .null
            object[last] = nil
            container = .object(object)
        } else if case .array(var elements) = container {
            container = .null
            elements.remove(at: JSONPointer.arrayIndex(last)!)
            container = .array(elements)
        }
    }
}

extension JSON {
    /// Equality as RFC 6902's `test` defines it: numbers compare by value (`1`, `1.0` and `1e0`
    /// are equal), objects ignore member order.
    func isEqualForPatchTest(to other: JSON) -> Bool {
        switch (self, other) {
        case (.number(let a), .number(let b)):
            guard a != b else { return true }
            guard let a = DecimalValue(a), let b = DecimalValue(b) else { return false }
            return a == b
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.isEqualForPatchTest(to: $1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            return a.members.allSatisfy { key, value in
                b[key].map { value.isEqualForPatchTest(to: $0) } ?? false
            }
        default:
            return self == other
        }
    }
}

extension JSON {
    /// The compact text, cut short for error messages about large documents.
    var shortDescription: String {
        let text = description
        return text.utf8.count <= 80 ? text : String(text.prefix(77)) + "..."
    }
}

/// A JSON number reduced to sign, significant digits and power of ten, so that numbers written
/// differently compare exactly, without rounding through a Double.
private struct DecimalValue: Equatable {
    var negative = false
    var digits: [UInt8] = []
    var exponent = 0

    init?(_ text: String) {
        var utf8 = Substring(text).utf8[...]
        if utf8.first == UInt8(ascii: "-") {
            negative = true
            utf8 = utf8.dropFirst()
        }
        var fractionDigits = 0
        var inFraction = false
        while let byte = utf8.first, byte != UInt8(ascii: "e"), byte != UInt8(ascii: "E") {
            utf8 = utf8.dropFirst()
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else {
                digits.append(byte)
                if inFraction { fractionDigits += 1 }
            }
        }
        var exponentValue = 0
        if !utf8.isEmpty {
            guard let parsed = Int(String(decoding: utf8.dropFirst(), as: UTF8.self)) else {
                return nil
            }
            exponentValue = parsed
        }
        digits = Array(digits.drop { $0 == UInt8(ascii: "0") })
        exponent = exponentValue - fractionDigits
        while digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty {
            negative = false
            exponent = 0
        }
    }
}

// MARK: - Diff

extension JSONPatch {
    /// A small patch that turns `source` into `target`, in time linear in their size.
    ///
    /// Objects are compared member by member. Arrays keep their common prefix and suffix of the
    /// same items (equal values, or objects with the same `name`) and compare those items; the
    /// changed middle is compared pairwise by index and the rest of it is removed (highest index
    /// first) or added (`/-` when appending). So appending, inserting or removing a container or
    /// an env var gives one operation, and equal lengths compare index by index. There is no
    /// move detection: it would cost quadratic time.
    public static func diff(from source: JSON, to target: JSON) -> JSONPatch {
        var differ = Differ()
        differ.path.reserveCapacity(16)
        // Room for an injection's operations, rather than growing four times on the way there.
        differ.operations.reserveCapacity(8)
        withUnsafePointer(to: source) { source in
            withUnsafePointer(to: target) { target in differ.diff(source, target) }
        }
        return JSONPatch(differ.operations)
    }
}

/// Looks at the two documents through pointers to where their values are stored, which are valid
/// for the whole diff: `diff(from:to:)` holds both documents, and nothing here changes them. Passed
/// as values, the members and elements on the way down to each change were copied (retained and
/// released, about thirty a review): the optimiser cannot see that a recursive call writes none.
private struct Differ {
    typealias Member = JSONObject.Member

    var operations: [JSONPatchOperation] = []
    var path: [String] = []

    /// Tokens of the pointer's own (`Array(path)` would share the buffer), so that `path` stays
    /// unshared and keeps its room: a shared one the next change copies, to no more room than
    /// it holds, and the append after that grows.
    var pointer: JSONPointer { JSONPointer(tokens: path.withUnsafeBufferPointer { Array($0) }) }

    mutating func diff(_ source: UnsafePointer<JSON>, _ target: UnsafePointer<JSON>) {
        if let a = Self.members(source), let b = Self.members(target) {
            if !Self.isSameBuffer(a, b) { diffObjects(a, b) }
        } else if let a = Self.elements(source), let b = Self.elements(target) {
            if !Self.isSameBuffer(a, b) { diffArrays(a, b) }
        } else if !(source.pointee == target.pointee) {
            operations.append(.replace(path: pointer, value: target.pointee))
        }
    }

    /// The members of an object, where they are stored; nil for other values.
    static func members(_ value: UnsafePointer<JSON>) -> UnsafeBufferPointer<Member>? {
        guard case .object(let object) = value.pointee else { return nil }
        return object.storage.withUnsafeBufferPointer { $0 }
    }

    /// The elements of an array, where they are stored; nil for other values.
    static func elements(_ value: UnsafePointer<JSON>) -> UnsafeBufferPointer<JSON>? {
        guard case .array(let elements) = value.pointee else { return nil }
        return elements.withUnsafeBufferPointer { $0 }
    }

    /// Whether both are one buffer (`sharesStorage(with:)`): then they are equal without looking.
    static func isSameBuffer<Element>(_ a: UnsafeBufferPointer<Element>, _ b: UnsafeBufferPointer<Element>) -> Bool {
        a.count == b.count && a.baseAddress == b.baseAddress
    }

    static func value(at index: Int, of members: UnsafeBufferPointer<Member>) -> UnsafePointer<JSON> {
        (members.baseAddress! + index).pointer(to: \.value)!
    }

    mutating func diffObjects(_ sources: UnsafeBufferPointer<Member>, _ targets: UnsafeBufferPointer<Member>) {
        // Objects larger than a handful of members (managedFields) are looked up by hashing.
        let targetIndex = Self.index(of: targets)
        let sourceIndex = Self.index(of: sources)
        // An edit leaves the members it keeps where they were and adds new ones last, so each
        // member is first looked for at its own position; while all are found there, the members
        // past the source's are the added ones, with no search. (Only without the hashed indexes,
        // whose idea of a key this shortcut would have to match.)
        var keptInPlace = targetIndex == nil && sourceIndex == nil
        for index in sources.indices {
            // Most members are the very same bits in both, kept in place: told apart in a
            // few loads, before their keys and values are looked at one by one.
            if keptInPlace, index < targets.count, hasSameBits(sources, index, targets, index) { continue }
            // The key is named only for a changed member: a copy of it costs a retain
            // and a release, for each of the dozens of members that are unchanged.
            let position: Int?
            if keptInPlace, index < targets.count, JSONObject.isSameKey(targets[index].key, sources[index].key) {
                position = index
            } else {
                keptInPlace = false
                position = Self.position(of: sources[index].key, in: targets, index: targetIndex)
            }
            if let position, JSON.isPlainlySame(sources[index].value, targets[position].value) { continue }
            path.append(sources[index].key)
            if let position {
                diff(Self.value(at: index, of: sources), Self.value(at: position, of: targets))
            } else {
                operations.append(.remove(path: pointer))
            }
            path.removeLast()
        }
        for index in (keptInPlace ? sources.count : 0)..<targets.count {
            let key = targets[index].key
            guard keptInPlace || Self.position(of: key, in: sources, index: sourceIndex) == nil else { continue }
            path.append(key)
            operations.append(.add(path: pointer, value: targets[index].value))
            path.removeLast()
        }
    }

    static func index(of members: UnsafeBufferPointer<Member>) -> [String: Int]? {
        guard members.count > 16 else { return nil }
        return Dictionary(zip(members.lazy.map(\.key), members.indices), uniquingKeysWith: { first, _ in first })
    }

    static func position(of key: String, in members: UnsafeBufferPointer<Member>, index: [String: Int]?) -> Int? {
        if let index { return index[key] }
        return JSONObject.index(of: key, in: members)
    }

    mutating func diffArrays(_ source: UnsafeBufferPointer<JSON>, _ target: UnsafeBufferPointer<JSON>) {
        let shorter = min(source.count, target.count)
        var prefix = 0
        while prefix < shorter && Self.isSameItem(source[prefix], target[prefix]) { prefix += 1 }
        var suffix = 0
        while suffix < shorter - prefix
            && Self.isSameItem(source[source.count - 1 - suffix], target[target.count - 1 - suffix]) { suffix += 1 }
        let sourceMiddle = source.count - prefix - suffix
        let targetMiddle = target.count - prefix - suffix
        let paired = min(sourceMiddle, targetMiddle)
        // Matched and paired items are compared at their current indices, before anything is
        // removed or inserted in front of them.
        for index in 0..<(prefix + paired) {
            diffElement(at: index, source.baseAddress! + index, target.baseAddress! + index)
        }
        let shift = target.count - source.count
        for index in (source.count - suffix)..<source.count {
            diffElement(at: index, source.baseAddress! + index, target.baseAddress! + index + shift)
        }
        for index in stride(from: prefix + sourceMiddle - 1, through: prefix + paired, by: -1) {
            path.append(Self.token(index))
            operations.append(.remove(path: pointer))
            path.removeLast()
        }
        for index in (prefix + paired)..<(prefix + targetMiddle) {
            path.append(suffix == 0 ? "-" : Self.token(index))
            operations.append(.add(path: pointer, value: target[index]))
            path.removeLast()
        }
    }

    mutating func diffElement(at index: Int, _ source: UnsafePointer<JSON>, _ target: UnsafePointer<JSON>) {
        // What `diff` would find unchanged, found before the index is made into text.
        if JSON.isPlainlySame(source.pointee, target.pointee) { return }
        path.append(Self.token(index))
        diff(source, target)
        path.removeLast()
    }

    /// The tokens of the first indices, made once: `String(index)` costs about 140 instructions,
    /// once for every array element the diff goes into.
    static let indexTokens = (0..<32).map { String($0) }

    static func token(_ index: Int) -> String {
        index < indexTokens.count ? indexTokens[index] : String(index)
    }

    /// Whether two array elements are the same item, perhaps changed: equal values, or objects
    /// with the same string `name`, the key of Kubernetes lists (containers, env, volumes, ports).
    static func isSameItem(_ source: JSON, _ target: JSON) -> Bool {
        if case .object(let a) = source, case .object(let b) = target,
           let position = a.index(forKey: "name"), case .string(let name) = a.storage[position].value {
            guard let other = b.index(forKey: "name"), case .string(let otherName) = b.storage[other].value else { return false }
            return otherName == name
        }
        return source == target
    }
}
