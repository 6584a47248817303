import Document

/// The identifying fields every Kubernetes object carries, read leniently: a missing or
/// mistyped field is nil, because callers only use these to name things in messages and to route.
public struct ObjectHeader: Sendable, Equatable {
    public var apiVersion: String?
    public var kind: String?
    public var name: String?
    public var generateName: String?
    public var namespace: String?

    public init(_ object: JSON) {
        apiVersion = object["apiVersion"]?.stringValue
        kind = object["kind"]?.stringValue
        let metadata = object["metadata"]
        name = metadata?["name"]?.stringValue
        generateName = metadata?["generateName"]?.stringValue
        namespace = metadata?["namespace"]?.stringValue
    }

    /// The name for messages: the name, else the generateName prefix followed by `*`
    /// (a pod created by a controller has no name yet), else an empty string.
    public var displayName: String {
        if let name, !name.isEmpty { return name }
        if let generateName, !generateName.isEmpty { return generateName + "*" }
        return ""
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
