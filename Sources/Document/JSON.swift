/// An ordered JSON value: the one document model every part of Tandem works on.
///
/// Objects keep their key order and numbers keep their source text, so a document that is read
/// and written again comes out as it went in, and a diff of two documents names only real changes.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number exactly as written (`8080`, `1e3`, `-0.50`); never rounded through a Double.
    case number(String)
    case string(String)
    case array([JSON])
    case object(JSONObject)
}

extension JSON {
    @inlinable
    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let array) = self { return array }
        return nil
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let bool) = self { return bool }
        return nil
    }

    /// The number's source text, for numbers only.
    public var numberText: String? {
        if case .number(let text) = self { return text }
        return nil
    }

    /// A number's value as `Int(numberText)` reads it (an optional sign and decimal digits, in
    /// range; nil otherwise), over the text's bytes: the generic parse cost hundreds of
    /// instructions, and an injection reads every container port twice. The one way Tandem reads an
    /// integer from JSON. The text is read where it is (on the stack for the usual short
    /// number), not copied out of the value: `withUTF8` on a copy cost a retain and a release.
    public var intValue: Int? {
        guard case .number(let text) = self else { return nil }
        if let value = text.utf8.withContiguousStorageIfAvailable(Self.intValue) { return value }
        var copy = text
        return copy.withUTF8(Self.intValue)
    }

    private static func intValue(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let isNegative = bytes.first == UInt8(ascii: "-")
        let signLength = isNegative || bytes.first == UInt8(ascii: "+") ? 1 : 0
        return TextScan.decimalValue(UnsafeBufferPointer(rebasing: bytes[signLength...]), negative: isNegative)
    }

    /// The value, moved out, leaving null in its place: for handing on a value that is not
    /// needed here any more without a copy (a retain, and a release when this one goes).
    public mutating func take() -> JSON {
        var taken = JSON.null
        swap(&taken, &self)
        return taken
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The member `key` of an object; nil for a missing key or a value that is not an object.
    @inlinable
    public subscript(key: String) -> JSON? {
        objectValue?[key]
    }

    /// `body` run on member `key` of an object where it is stored; nil for a missing key or a
    /// value that is not an object. For a look at a member (its type, a string in it, a member of
    /// it): the subscript copies the member out, a retain and a release.
    @inlinable
    public func withMember<Result>(_ key: String, _ body: (JSON) throws -> Result?) rethrows -> Result? {
        guard case .object(let object) = self else { return nil }
        return try object.withValue(forKey: key, body)
    }

    /// A short name of the value's type, for error messages ("expected an object, got a string").
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// A JSON number for an integer.
    public static func integer(_ value: Int) -> JSON { .number(String(value)) }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(JSONObject(elements))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// A JSON object that keeps its members in insertion order.
///
/// Kubernetes objects are small maps, so members live in one array of key-value pairs and
/// lookups are a linear scan: cheaper than hashing for the sizes that occur, order comes for
/// free, and an object costs one allocation. Equality ignores order, as JSON's does.
public struct JSONObject: Sendable, Hashable {
    /// A struct rather than a tuple, so that copying and destroying members is specialised code
    /// instead of the runtime's generic tuple witnesses.
    @usableFromInline
    struct Member: Sendable {
        @usableFromInline var key: String
        @usableFromInline var value: JSON
    }

    /// The stored members; `members` shows them as `(key, value)` pairs.
    @usableFromInline private(set) var storage: MemberBuffer

    /// Members in order.
    public var members: Members { Members(storage: storage) }

    /// The members as `(key, value)` pairs, by position.
    public struct Members: RandomAccessCollection, Sendable {
        let storage: MemberBuffer
        public var startIndex: Int { 0 }
        public var endIndex: Int { storage.count }
        public subscript(position: Int) -> (key: String, value: JSON) {
            let member = storage[position]
            return (member.key, member.value)
        }
    }

    public init() {
        storage = MemberBuffer()
    }

    public init(_ members: [(String, JSON)]) {
        storage = MemberBuffer(members.lazy.map { Member(key: $0.0, value: $0.1) })
    }

    /// Takes the members from `start` to the top of a reader's stack, moved into the object's
    /// storage in one copy of their bytes; for readers that have already rejected duplicate keys.
    @inline(__always)
    init(uniqueMembersFrom stack: inout Stack<Member>, from start: Int) {
        storage = MemberBuffer(movingFrom: &stack, from: start)
    }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }
    public var keys: [String] { storage.map(\.key) }
    public var values: [JSON] { storage.map(\.value) }

    /// Keys of different UTF-8 lengths are different member names (JSON compares names code
    /// point by code point, RFC 8259 §8.3), so the length rules most keys out before `==`, which
    /// is costly when it fails.
    /// Through the buffer, so that looking at a member does not copy (retain and release) it.
    /// Inlinable, as are the subscript's getter and `isSameKey`, so that lookups from other
    /// modules are not calls (a review makes about a hundred).
    @inlinable
    public func index(forKey key: String) -> Int? {
        storage.withUnsafeBufferPointer { Self.index(of: key, in: $0) }
    }

    /// `index(forKey:)` over members not yet in an object (a reader's, still being collected).
    @inlinable
    static func index(of key: String, in members: UnsafeBufferPointer<Member>) -> Int? {
        let length = key.utf8.count
        for index in members.indices where members[index].key.utf8.count == length && members[index].key == key {
            return index
        }
        return nil
    }

    /// Whether two keys name the same member, as `index(forKey:)` decides it.
    @inlinable
    public static func isSameKey(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && a == b
    }

    /// Reads a member, or sets it: an existing key keeps its place, a new key goes last,
    /// and setting nil removes the member.
    public subscript(key: String) -> JSON? {
        @inlinable get {
            guard let index = index(forKey: key) else { return nil }
            return storage[index].value
        }
        set {
            if let index = index(forKey: key) {
                if let newValue {
                    storage[index].value = newValue
                } else {
                    storage.remove(at: index)
                }
            } else if let newValue {
                storage.append(Member(key: key, value: newValue))
            }
        }
    }

    /// `body` run on the value of member `key` where it is stored, nil when the member is
    /// missing: a look at it without the copy (a retain and a release) the subscript returns.
    @inlinable
    public func withValue<Result>(forKey key: String, _ body: (JSON) throws -> Result?) rethrows -> Result? {
        try storage.withUnsafeBufferPointer { members in
            guard let index = Self.index(of: key, in: members) else { return nil }
            return try body(members[index].value)
        }
    }

    /// Runs `body` on the value at `position` in place, so that a value held nowhere else is
    /// changed without being copied.
    @discardableResult
    public mutating func modifyValue<Result, Failure: Error>(
        at position: Int, _ body: (inout JSON) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(&storage[position].value)
    }

    /// Runs `body` on member `key` in place, found with one lookup rather than a read and two
    /// writes; nil when the member is missing.
    @discardableResult
    public mutating func modifyMember<Result, Failure: Error>(
        _ key: String, _ body: (inout JSON) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let position = index(forKey: key) else { return nil }
        return try modifyValue(at: position, body)
    }

    /// Appends a member without looking for an existing key; for readers that have already
    /// rejected duplicates.
    public mutating func appendUnchecked(key: String, value: JSON) {
        storage.append(Member(key: key, value: value))
    }

    /// Order-insensitive, to agree with `==`: each member is hashed alone and the results summed.
    public func hash(into hasher: inout Hasher) {
        var sum = 0
        for member in storage {
            var memberHasher = Hasher()
            memberHasher.combine(member.key)
            memberHasher.combine(member.value)
            sum &+= memberHasher.finalize()
        }
        hasher.combine(count)
        hasher.combine(sum)
    }

    /// Room for `count` members, for readers that know how many are coming.
    public mutating func reserveCapacity(_ count: Int) {
        storage.reserveCapacity(count)
    }

    /// Whether both hold the one buffer, as the untouched parts of a document and of its edited
    /// copy do: then they are equal without looking.
    public func sharesStorage(with other: JSONObject) -> Bool {
        storage.sharesStorage(with: other.storage)
    }

    /// The keys of the members that are not plainly those of `earlier`: the same key at the same
    /// place (an edit leaves the members it keeps where they were) with the same container,
    /// string, number or literal. A member that is only equal, or moved, counts as changed, under
    /// its key here and its key in `earlier`. For checks that need to look only at what an edit
    /// changed.
    public func keysChanged(since earlier: JSONObject) -> [String] {
        var changed: [String] = []
        storage.withUnsafeBufferPointer { now in
            earlier.storage.withUnsafeBufferPointer { then in
                for index in 0..<Swift.max(now.count, then.count) {
                    // Most members are the very same bits in both: kept, told in a few loads.
                    if index < now.count, index < then.count, hasSameBits(now, index, then, index) { continue }
                    if index < now.count, index < then.count, Self.isSameKey(now[index].key, then[index].key) {
                        if !JSON.isPlainlySame(now[index].value, then[index].value) { changed.append(now[index].key) }
                        continue
                    }
                    if index < now.count { changed.append(now[index].key) }
                    if index < then.count { changed.append(then[index].key) }
                }
            }
        }
        return changed
    }

    /// Read-only, as the optimiser is told (see `JSON.==`).
    @_effects(readonly)
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.sharesStorage(with: rhs) { return true }
        // Through the buffers, so that comparing a member does not copy (retain and release) it.
        // One pass over keys and values: a member of the same bits in both (most of an edited
        // document's) is settled in a few loads, without comparing its key. While the keys keep
        // the same order, a member with other bits is compared by value; once one value differs,
        // only the keys are compared on, to tell the ordered case (unequal) from the other.
        let equalInOrder: Bool? = lhs.storage.withUnsafeBufferPointer { a in
            rhs.storage.withUnsafeBufferPointer { b in
                var valuesEqual = true
                for index in a.indices where !hasSameBits(a, index, b, index) {
                    guard a[index].key == b[index].key else { return nil }
                    if valuesEqual && !(a[index].value == b[index].value) { valuesEqual = false }
                }
                return valuesEqual
            }
        }
        if let equalInOrder { return equalInOrder }
        // Same members in another order: index one side so large objects stay linear.
        var index: [String: Int] = [:]
        index.reserveCapacity(rhs.count)
        for (position, member) in rhs.storage.enumerated() { index[member.key] = position }
        for member in lhs.storage {
            guard let position = index[member.key], rhs.storage[position].value == member.value else { return false }
        }
        return true
    }
}

/// Whether two values are the same bits: the same key and the same container, or the same
/// string, number or literal, stored alike. Then they are equal, found without copying
/// (retaining and releasing) either; an edited copy of a document keeps most of its values so.
/// Values that are equal but stored apart are not told apart here, and are compared in full.
@inline(__always)
func hasSameBits<Value>(_ a: UnsafeBufferPointer<Value>, _ i: Int, _ b: UnsafeBufferPointer<Value>, _ j: Int) -> Bool {
    let x = UnsafeRawPointer(a.baseAddress! + i)
    let y = UnsafeRawPointer(b.baseAddress! + j)
    var byte = 0
    while byte + 8 <= MemoryLayout<Value>.size {
        if x.load(fromByteOffset: byte, as: UInt64.self) != y.load(fromByteOffset: byte, as: UInt64.self) { return false }
        byte += 8
    }
    while byte < MemoryLayout<Value>.size {
        if x.load(fromByteOffset: byte, as: UInt8.self) != y.load(fromByteOffset: byte, as: UInt8.self) { return false }
        byte += 1
    }
    return true
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self.init(elements)
    }
}

extension JSON {
    /// Written out rather than derived: the derived one copies (retains and releases) each value
    /// it compares, and so does `Array`'s `==` for each element. The same relation as the derived
    /// one, which the derived `hash(into:)` agrees with.
    /// Read-only, as the optimiser is told: otherwise, not knowing what the call (recursive through
    /// `JSONObject`'s `==`) writes, it copies (retains and releases) each member value passed to it
    /// from a buffer, a dozen a review.
    @_effects(readonly)
    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch lhs {
        case .null: if case .null = rhs { return true }
        case .bool(let a): if case .bool(let b) = rhs { return a == b }
        case .number(let a): if case .number(let b) = rhs { return a == b }
        case .string(let a): if case .string(let b) = rhs { return a == b }
        case .array(let a): if case .array(let b) = rhs { return areEqual(a, b) }
        case .object(let a): if case .object(let b) = rhs { return a == b }
        }
        return false
    }

    /// Element by element through the buffers, so that comparing an element does not copy it.
    private static func areEqual(_ a: [JSON], _ b: [JSON]) -> Bool {
        guard a.count == b.count else { return false }
        if a.sharesStorage(with: b) { return true }
        return a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for index in a.indices where !hasSameBits(a, index, b, index) && !(a[index] == b[index]) { return false }
                return true
            }
        }
    }

    /// Equal at a glance: the same container (one buffer, as the untouched parts of a document
    /// and of its edited copy are), or an equal string, number or literal. Containers that are
    /// only equal are not looked into.
    static func isPlainlySame(_ a: JSON, _ b: JSON) -> Bool {
        if case .object(let a) = a, case .object(let b) = b { return a.sharesStorage(with: b) }
        if case .array(let a) = a, case .array(let b) = b { return a.sharesStorage(with: b) }
        if case .object = a { return false }
        if case .array = a { return false }
        return a == b
    }
}

extension Array {
    /// Whether both are one buffer: then they are equal without looking.
    func sharesStorage(with other: [Element]) -> Bool {
        count == other.count && withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress }
        }
    }
}

/// A JSON object's members, in storage of their own rather than an `Array`'s. Freeing an
/// array's storage runs the unspecialised generic class deinit, which destroys each member
/// through the runtime's value witnesses, and copying one (copy-on-write) goes through the
/// runtime's generic element copy: here both are loops in code specialised for `Member`. One
/// allocation per object, none for an empty one; copied when shared and changed, as an array is.
/// Sendable as an array is: storage that is shared is never changed.
@usableFromInline
struct MemberBuffer: RandomAccessCollection, @unchecked Sendable {
    @usableFromInline typealias Member = JSONObject.Member

    @usableFromInline var storage: MemberStorage

    init() {
        storage = MemberStorage.empty
    }

    init(_ members: some Collection<Member>) {
        guard !members.isEmpty else {
            storage = MemberStorage.empty
            return
        }
        let made = MemberStorage.make(capacity: members.count)
        var target = made.elements
        for member in members {
            target.initialize(to: member)
            target += 1
        }
        made.count = members.count
        storage = made
    }

    @inline(__always)
    init(movingFrom stack: inout Stack<Member>, from start: Int) {
        let count = stack.count - start
        guard count > 0 else {
            storage = MemberStorage.empty
            return
        }
        let made = MemberStorage.make(capacity: count)
        stack.moveAll(from: start, to: made.elements)
        made.count = count
        storage = made
    }

    @inlinable var startIndex: Int { 0 }
    @inlinable var endIndex: Int { storage.count }

    @inlinable
    subscript(position: Int) -> Member {
        unsafeAddress {
            precondition(UInt(bitPattern: position) < UInt(bitPattern: count), "member index out of range")
            return UnsafePointer(storage.elements + position)
        }
        unsafeMutableAddress {
            precondition(UInt(bitPattern: position) < UInt(bitPattern: count), "member index out of range")
            makeUnique(capacity: count)
            return storage.elements + position
        }
    }

    @inlinable
    func withUnsafeBufferPointer<Result>(_ body: (UnsafeBufferPointer<Member>) throws -> Result) rethrows -> Result {
        try storage.withUnsafeMutablePointers { header, elements in
            try body(UnsafeBufferPointer(start: elements, count: header.pointee.count))
        }
    }

    /// Whether both are one buffer: then they are equal without looking.
    func sharesStorage(with other: MemberBuffer) -> Bool {
        ObjectIdentifier(storage) == ObjectIdentifier(other.storage)
    }

    mutating func append(_ member: consuming Member) {
        let count = self.count
        makeUnique(capacity: count < storage.room ? count + 1 : Swift.max(1, 2 * count))
        (storage.elements + count).initialize(to: member)
        storage.count = count + 1
    }

    mutating func remove(at position: Int) {
        let count = self.count
        precondition(UInt(bitPattern: position) < UInt(bitPattern: count), "member index out of range")
        makeUnique(capacity: count)
        let elements = storage.elements
        (elements + position).deinitialize(count: 1)
        (elements + position).moveInitialize(from: elements + position + 1, count: count - position - 1)
        storage.count = count - 1
    }

    mutating func reserveCapacity(_ capacity: Int) {
        makeUnique(capacity: capacity)
    }

    /// Makes the storage this buffer's alone, with room for `capacity` members.
    @inlinable
    mutating func makeUnique(capacity: Int) {
        if isKnownUniquelyReferenced(&storage), storage.room >= capacity { return }
        replaceStorage(capacity: capacity)
    }

    /// New storage of room for `capacity` members (at least those there are): a shared one's
    /// members are copied, an unshared one's moved.
    @usableFromInline
    mutating func replaceStorage(capacity: Int) {
        let count = self.count
        let made = MemberStorage.make(capacity: Swift.max(capacity, count))
        if isKnownUniquelyReferenced(&storage) {
            made.elements.moveInitialize(from: storage.elements, count: count)
            storage.count = 0
        } else {
            made.copyMembers(from: storage.elements, count: count)
        }
        made.count = count
        storage = made
    }
}

@usableFromInline
struct MemberStorageHeader {
    @usableFromInline var count: Int
    @usableFromInline var capacity: Int
}

/// A non-generic class, so that its deinit is specialised for `Member`, unlike an array's.
@usableFromInline
final class MemberStorage: ManagedBuffer<MemberStorageHeader, JSONObject.Member> {
    /// The storage of every empty object, as an array's: never changed, as it is always shared.
    nonisolated(unsafe) static let empty = make(capacity: 0)

    @inline(__always)
    static func make(capacity: Int) -> MemberStorage {
        let made = create(minimumCapacity: capacity) { _ in MemberStorageHeader(count: 0, capacity: capacity) }
        return unsafeDowncast(made, to: MemberStorage.self)
    }

    @inlinable
    var elements: UnsafeMutablePointer<JSONObject.Member> { withUnsafeMutablePointerToElements { $0 } }

    /// Through the header's address: `header` is checked for exclusive access at each use.
    @inlinable
    var count: Int {
        get { withUnsafeMutablePointerToHeader { $0.pointee.count } }
        set { withUnsafeMutablePointerToHeader { $0.pointee.count = newValue } }
    }

    /// The room allocated; `ManagedBuffer.capacity` asks malloc.
    @inlinable
    var room: Int { withUnsafeMutablePointerToHeader { $0.pointee.capacity } }

    /// Copies `count` members from `source` into this storage's first places: their bits in one
    /// copy, then a retain for each key and value that holds a reference. A key that is a small
    /// string or a literal (most are), and a value that holds nothing to release, is its bits, and
    /// needs no call to the runtime's retain, as copying it as a value makes.
    func copyMembers(from source: UnsafePointer<JSONObject.Member>, count: Int) {
        let elements = self.elements
        UnsafeMutableRawPointer(elements).copyMemory(from: source, byteCount: count * MemoryLayout<JSONObject.Member>.stride)
        for position in 0..<count {
            // A copy of the key or value written over its own bits: the retain that copying it makes.
            let member = elements + position
            if !TextScan.isLiteral(member.pointee.key) { member.pointer(to: \.key)!.initialize(to: member.pointee.key) }
            if !Self.holdsNothingToRelease(member.pointee.value) {
                member.pointer(to: \.value)!.initialize(to: member.pointee.value)
            }
        }
    }

    /// Member by member: a count of many goes to the runtime's generic destroy. A key that is a
    /// small string or a literal (most are) holds nothing to release, and is left as it is
    /// rather than passed to the runtime's release, a call for each member.
    deinit {
        let elements = self.elements
        for position in 0..<count {
            let member = elements + position
            if !TextScan.isLiteral(member.pointee.key) { member.pointer(to: \.key)!.deinitialize(count: 1) }
            if !Self.holdsNothingToRelease(member.pointee.value) { member.pointer(to: \.value)!.deinitialize(count: 1) }
        }
    }

    /// A literal, or a string or number that is a small string or a literal.
    @inline(__always)
    private static func holdsNothingToRelease(_ value: borrowing JSON) -> Bool {
        switch value {
        case .null, .bool: true
        case .string(let text), .number(let text): TextScan.isLiteral(text)
        case .array, .object: false
        }
    }
}
