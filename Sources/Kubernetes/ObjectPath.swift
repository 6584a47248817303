import Document

/// Reading and rewriting values deep inside a document by JSON Pointer tokens
/// (object keys, or decimal indexes into arrays), so callers can report where a value lives.
public enum ObjectPath {
    /// The value at `tokens` below `root`, or nil when any step is missing.
    public static func value(at tokens: some Collection<String>, in root: JSON) -> JSON? {
        var current = root
        for token in tokens {
            switch current {
            case .object(let object):
                guard let next = object[token] else { return nil }
                current = next
            case .array(let array):
                guard let index = Int(token), array.indices.contains(index) else { return nil }
                current = array[index]
            default:
                return nil
            }
        }
        return current
    }

    /// Runs `body` on the value at `tokens` in place; nil (and nothing changed) when the path is missing.
    @discardableResult
    public static func modify<Result, Failure: Error>(
        at tokens: [String], in root: inout JSON, _ body: (inout JSON) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try modify(at: tokens[...], in: &root, body)
    }

    /// Runs `body` on the value at `tokens` in place; returns nil (and changes nothing) when the
    /// path is missing.
    ///
    /// Each level is moved out of its parent before it is changed and put back after, so the
    /// value being edited is never shared and nothing is copied: editing one member of a pod with
    /// thousands of env vars stays linear. `if case` rather than `switch`, which would keep a
    /// second reference to each level while it changes and so copy every one.
    @discardableResult
    public static func modify<Result, Failure: Error>(
        at tokens: ArraySlice<String>, in root: inout JSON,
        _ body: (inout JSON) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let token = tokens.first else { return try body(&root) }
        if case .object(var object) = root {
            guard let position = object.index(forKey: token) else { return nil }
            root = .null
            defer { root = .object(object) }
            return try object.modifyValue(at: position) { (child: inout JSON) throws(Failure) in
                try modify(at: tokens.dropFirst(), in: &child, body)
            }
        } else if case .array(var array) = root {
            guard let index = Int(token), array.indices.contains(index) else { return nil }
            root = .null
            defer { root = .array(array) }
            return try modify(at: tokens.dropFirst(), in: &array[index], body)
        }
        return nil
    }
}

extension JSON {
    /// Runs `body` on this value as an object in place; false when it is not an object.
    /// The object is moved out first so changing it copies nothing.
    @discardableResult
    public mutating func modifyObject<Failure: Error>(
        _ body: (inout JSONObject) throws(Failure) -> Void
    ) throws(Failure) -> Bool {
        guard case .object(var object) = self else { return false }
        self = .null
        defer { self = .object(object) }
        try body(&object)
        return true
    }
}
