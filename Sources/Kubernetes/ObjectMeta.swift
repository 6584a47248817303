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

    public init(_ object: JSON) {
        let fields = object.objectValue
        kind = fields?["kind"]?.stringValue
        let metadata = fields?["metadata"]?.objectValue
        namespace = metadata?["namespace"]?.stringValue
        if let name = metadata?["name"]?.stringValue, !name.isEmpty {
            displayName = name
        } else if let generateName = metadata?["generateName"]?.stringValue, !generateName.isEmpty {
            displayName = generateName + "*"
        } else {
            displayName = ""
        }
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
