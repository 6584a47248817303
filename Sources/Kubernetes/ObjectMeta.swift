import Document

/// The identifying fields every Kubernetes object carries, read leniently: a missing or
/// mistyped field is nil, because callers only use these to name things in messages and to route.
/// Only what they use is read (each lookup scans the object's members, and this runs for every
/// object injected): the kind, the name for messages and the namespace.
public struct ObjectHeader: Sendable, Equatable {
    public var kind: String?
    /// The name, else the generateName prefix followed by `*` (a pod created by a controller has
    /// no name yet), else an empty string. The prefix is looked up only for an object without a name.
    public var displayName: String
    public var namespace: String?

    /// The object and its metadata are looked at where they are stored: copied out to be read,
    /// each was retained and released.
    public init(_ object: JSON) {
        kind = object.withMember("kind") { $0.stringValue }
        (namespace, displayName) = object.withMember("metadata", Self.namespaceAndName) ?? (nil, "")
    }

    private static func namespaceAndName(in metadata: JSON) -> (String?, String) {
        let namespace = metadata.withMember("namespace") { $0.stringValue }
        if let name = metadata.withMember("name", { $0.stringValue }), !name.isEmpty {
            return (namespace, name)
        } else if let generateName = metadata.withMember("generateName", { $0.stringValue }), !generateName.isEmpty {
            return (namespace, generateName + "*")
        }
        return (namespace, "")
    }

    /// `Deployment "web"`, the way messages name an object.
    public var reference: String {
        "\(kind ?? "object") \"\(displayName)\""
    }
}

/// Labels and annotations of a metadata object. Setting nil removes a key. The map is created
/// when first needed but never removed when it becomes empty: callers that must restore a
/// document exactly know whether it existed before, and these helpers cannot.
public enum Metadata {
    public static func annotation(_ key: String, in metadata: JSONObject) -> String? {
        metadata["annotations"]?[key]?.stringValue
    }

    public static func label(_ key: String, in metadata: JSONObject) -> String? {
        metadata["labels"]?[key]?.stringValue
    }

    public static func setAnnotation(_ key: String, to value: String?, in metadata: inout JSONObject) {
        if metadata["annotations"]?.objectValue == nil {
            guard value != nil else { return }
            metadata["annotations"] = .object(JSONObject())
        }
        metadata.modifyMember("annotations") { entries in
            entries.modifyObject { $0[key] = value.map(JSON.string) }
        }
    }
}
