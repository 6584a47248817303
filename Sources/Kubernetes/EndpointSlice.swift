import Document

/// A typed view of a `discovery.k8s.io/v1` EndpointSlice: what the discovery bridge needs.
///
/// Decoding follows the API's defaults: a missing `ready` or `serving` condition means true, a
/// missing `terminating` means false; `null` lists (as in watch bookmarks) read as empty.
public struct EndpointSlice: Sendable, Equatable {
    public struct Port: Sendable, Equatable {
        public var name: String
        public var port: Int
        public var protocolName: String

        public init(name: String, port: Int, protocolName: String) {
            self.name = name
            self.port = port
            self.protocolName = protocolName
        }
    }

    public struct Endpoint: Sendable, Equatable {
        public var addresses: [String]
        public var ready: Bool
        public var serving: Bool
        public var terminating: Bool
        public var nodeName: String?
        public var zone: String?
        /// The pod (or other object) behind the endpoint, as `namespace/name`.
        public var target: String?

        public init(addresses: [String], ready: Bool, serving: Bool, terminating: Bool, nodeName: String?,
                    zone: String?, target: String?) {
            self.addresses = addresses
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
            self.nodeName = nodeName
            self.zone = zone
            self.target = target
        }
    }

    public var namespace: String
    public var name: String
    /// The Service the slice belongs to (label `kubernetes.io/service-name`).
    public var serviceName: String?
    /// The controller that manages the slice (label `endpointslice.kubernetes.io/managed-by`).
    public var managedBy: String?
    public var addressType: String
    public var ports: [Port]
    public var endpoints: [Endpoint]

    public static let serviceNameLabel = "kubernetes.io/service-name"
    public static let managedByLabel = "endpointslice.kubernetes.io/managed-by"

    public init(namespace: String, name: String, serviceName: String?, managedBy: String?, addressType: String,
                ports: [Port], endpoints: [Endpoint]) {
        self.namespace = namespace
        self.name = name
        self.serviceName = serviceName
        self.managedBy = managedBy
        self.addressType = addressType
        self.ports = ports
        self.endpoints = endpoints
    }

    /// Reads a slice; nil when the object is not one (no name, or the wrong kind).
    public init?(_ object: JSON) {
        if let kind = object["kind"]?.stringValue, kind != "EndpointSlice" { return nil }
        guard let metadata = object["metadata"]?.objectValue, let name = metadata["name"]?.stringValue else { return nil }
        self.name = name
        namespace = metadata["namespace"]?.stringValue ?? "default"
        serviceName = metadata["labels"]?[Self.serviceNameLabel]?.stringValue
        managedBy = metadata["labels"]?[Self.managedByLabel]?.stringValue
        addressType = object["addressType"]?.stringValue ?? "IPv4"
        ports = (object["ports"]?.arrayValue ?? []).compactMap { port in
            guard let number = port["port"]?.intValue else { return nil }
            return Port(name: port["name"]?.stringValue ?? "", port: number,
                        protocolName: port["protocol"]?.stringValue ?? "TCP")
        }
        endpoints = (object["endpoints"]?.arrayValue ?? []).map { endpoint in
            let conditions = endpoint["conditions"]
            var target: String?
            if let reference = endpoint["targetRef"], let targetName = reference["name"]?.stringValue {
                target = (reference["namespace"]?.stringValue).map { $0 + "/" + targetName } ?? targetName
            }
            return Endpoint(
                addresses: (endpoint["addresses"]?.arrayValue ?? []).compactMap(\.stringValue),
                ready: conditions?["ready"]?.boolValue ?? true,
                serving: conditions?["serving"]?.boolValue ?? true,
                terminating: conditions?["terminating"]?.boolValue ?? false,
                nodeName: endpoint["nodeName"]?.stringValue,
                zone: endpoint["zone"]?.stringValue,
                target: target)
        }
    }

    /// The slice as an API object, for writing it back to Kubernetes.
    public var json: JSON {
        var labels = JSONObject()
        if let serviceName { labels[Self.serviceNameLabel] = .string(serviceName) }
        if let managedBy { labels[Self.managedByLabel] = .string(managedBy) }
        let endpointValues: [JSON] = endpoints.map { endpoint in
            var object: JSONObject = JSONObject([
                ("addresses", .array(endpoint.addresses.map(JSON.string))),
                ("conditions", ["ready": .bool(endpoint.ready), "serving": .bool(endpoint.serving),
                                "terminating": .bool(endpoint.terminating)]),
            ])
            if let nodeName = endpoint.nodeName { object["nodeName"] = .string(nodeName) }
            if let zone = endpoint.zone { object["zone"] = .string(zone) }
            return .object(object)
        }
        return [
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": ["name": .string(name), "namespace": .string(namespace), "labels": .object(labels)],
            "addressType": .string(addressType),
            "ports": .array(ports.map { ["name": .string($0.name), "port": .integer($0.port), "protocol": .string($0.protocolName)] }),
            "endpoints": .array(endpointValues),
        ]
    }
}
