import Document

/// Why a document could not be injected or uninjected, with the JSON Pointer tokens of the
/// offending value (from the root of the document given) so the CLI can print line:column.
public struct InjectionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var pointer: [String]
    public var message: String

    public init(pointer: [String], message: String) {
        self.pointer = pointer
        self.message = message
    }

    public var description: String { message }

    /// The same error seen from a document that holds this one's at `prefix`.
    func nested(under prefix: [String]) -> InjectionError {
        InjectionError(pointer: prefix + pointer, message: message)
    }
}

/// A value as it appears in messages: strings quoted, numbers and booleans as written, other
/// values by their type.
func describe(_ value: JSON) -> String {
    switch value {
    case .string(let string): return "\"\(string)\""
    case .number(let text): return text
    case .bool(let bool): return String(bool)
    case .null: return "null"
    case .array, .object: return value.typeName
    }
}
