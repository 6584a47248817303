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

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The member `key` of an object; nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSON? {
        objectValue?[key]
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
/// Kubernetes objects are small maps, so members live in two parallel arrays and lookups are a
/// linear scan: cheaper than hashing for the sizes that occur, and order comes for free.
/// Equality ignores order, as JSON's does.
public struct JSONObject: Sendable, Hashable {
    public private(set) var keys: [String]
    public private(set) var values: [JSON]

    public init() {
        keys = []
        values = []
    }

    public init(_ members: [(String, JSON)]) {
        keys = members.map(\.0)
        values = members.map(\.1)
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public func index(forKey key: String) -> Int? {
        keys.firstIndex(of: key)
    }

    /// Reads a member, or sets it: an existing key keeps its place, a new key goes last,
    /// and setting nil removes the member.
    public subscript(key: String) -> JSON? {
        get {
            guard let index = index(forKey: key) else { return nil }
            return values[index]
        }
        set {
            if let index = index(forKey: key) {
                if let newValue {
                    values[index] = newValue
                } else {
                    keys.remove(at: index)
                    values.remove(at: index)
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    /// Appends a member without looking for an existing key; for readers that have already
    /// rejected duplicates.
    public mutating func appendUnchecked(key: String, value: JSON) {
        keys.append(key)
        values.append(value)
    }

    /// Members in order.
    public var members: Zip2Sequence<[String], [JSON]> { zip(keys, values) }

    /// Order-insensitive, to agree with `==`: each member is hashed alone and the results summed.
    public func hash(into hasher: inout Hasher) {
        var sum = 0
        for (key, value) in members {
            var member = Hasher()
            member.combine(key)
            member.combine(value)
            sum &+= member.finalize()
        }
        hasher.combine(count)
        hasher.combine(sum)
    }

    /// Room for `count` members, for readers that know how many are coming.
    public mutating func reserveCapacity(_ count: Int) {
        keys.reserveCapacity(count)
        values.reserveCapacity(count)
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.keys.count == rhs.keys.count else { return false }
        if lhs.keys == rhs.keys { return lhs.values == rhs.values }
        // Same members in another order: index one side so large objects stay linear.
        var index: [String: Int] = [:]
        index.reserveCapacity(rhs.count)
        for (position, key) in rhs.keys.enumerated() { index[key] = position }
        for (key, value) in lhs.members {
            guard let position = index[key], rhs.values[position] == value else { return false }
        }
        return true
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self.init(elements)
    }
}
