import Document
import Kubernetes

/// What the bridge writes into Kubernetes so in-cluster clients reach legacy hosts by DNS, as a
/// pure function of the registry's legacy hosts and the objects the API server holds.
///
/// A legacy service `web` (or `web.<namespace>`) becomes EndpointSlices labelled with the Service
/// name and `endpointslice.kubernetes.io/managed-by: bridge.tandem.io`. When no Service of that
/// name exists, the bridge also makes a selector-less one; when a Service exists (pods of the
/// same service during a migration), the legacy hosts join it, named by its ports. Objects the
/// bridge owns and no longer wants are deleted. Registrations (revision, tags) ride along in an
/// annotation, so a restarted bridge or a standby replica rebuilds the legacy side from the API.
public struct WriteBack: Sendable {
    /// The value of the managed-by labels on everything the bridge writes.
    public static let manager = "bridge.tandem.io"
    public static let serviceManagedByLabel = "app.kubernetes.io/managed-by"
    public static let registrationsAnnotation = "bridge.tandem.io/registrations"
    /// The API's limit of endpoints in one slice.
    public static let maxEndpointsPerSlice = 1000

    /// Where services without a namespace suffix live.
    public var homeNamespace: String
    /// Namespaces the bridge may write to; nil for all.
    public var namespaces: Set<String>?

    public init(homeNamespace: String, namespaces: Set<String>? = nil) {
        self.homeNamespace = homeNamespace
        self.namespaces = namespaces
    }

    /// A change to make through the API.
    public enum Write: Sendable, Equatable {
        /// POST the object to its collection.
        case create(collection: String, object: JSON)
        /// Merge-patch the object; the patch carries the resourceVersion it was planned against.
        case patch(path: String, patch: JSON)
        case delete(path: String)
    }

    /// A legacy service that cannot be mirrored, and why.
    public struct Skipped: Sendable, Equatable {
        public var service: String
        public var reason: String
    }

    public struct Plan: Sendable, Equatable {
        public var writes: [Write]
        public var skipped: [Skipped]
    }

    /// The writes that make Kubernetes hold exactly the legacy hosts, given every Service and
    /// EndpointSlice the bridge can see (its own and others', as the API returned them).
    public func plan(legacy: [String: [Endpoint]], services: [JSON], slices: [JSON]) -> Plan {
        var desired: [String: JSON] = [:]
        var skipped: [Skipped] = []
        let servicesByKey = Dictionary(services.compactMap { service in InformerCache.key(of: service).map { ($0, service) } },
                                       uniquingKeysWith: { first, _ in first })
        for (service, hosts) in legacy.sorted(by: { $0.key < $1.key }) {
            guard let (namespace, name) = target(of: service) else {
                skipped.append(Skipped(service: service, reason: "not a valid Kubernetes Service name (DNS-1035 label, optionally .namespace)"))
                continue
            }
            if let namespaces, !namespaces.contains(namespace) {
                skipped.append(Skipped(service: service, reason: "namespace \(namespace) is not one the bridge writes to"))
                continue
            }
            let existing = servicesByKey[namespace + "/" + name]
            let ownsService = existing.map(Self.isOwned) ?? true
            var portNames: [Int: String] = [:]
            var unmatched: [Int] = []
            for port in Set(hosts.map(\.port)).sorted() {
                if ownsService {
                    portNames[port] = Self.portName(port)
                } else if let existing, let matched = Self.servicePortName(existing, forTargetPort: port) {
                    portNames[port] = matched
                } else {
                    unmatched.append(port)
                }
            }
            if !unmatched.isEmpty {
                skipped.append(Skipped(service: service, reason: "Service \(namespace)/\(name) has no port for \(unmatched.map(String.init).joined(separator: ", "))"))
            }
            if ownsService {
                desired[Self.servicePath(namespace, name)] = serviceObject(namespace: namespace, name: name, ports: portNames.keys.sorted())
            }
            for slice in sliceObjects(namespace: namespace, service: name, hosts: hosts.filter { portNames[$0.port] != nil },
                                      portNames: portNames) {
                desired[Self.slicePath(namespace, slice["metadata"]?["name"]?.stringValue ?? "")] = slice
            }
        }

        var observed: [String: JSON] = [:]
        for service in services where Self.isOwned(service) {
            if let path = Self.path(of: service, collection: Self.servicesCollection) { observed[path] = service }
        }
        for slice in slices where Self.isOwned(slice) {
            if let path = Self.path(of: slice, collection: Self.slicesCollection) { observed[path] = slice }
        }

        var writes: [Write] = []
        for (path, object) in desired.sorted(by: { $0.key < $1.key }) {
            guard let current = observed[path] else {
                let collection = String(path[..<path.lastIndex(of: "/")!])
                writes.append(.create(collection: collection, object: object))
                continue
            }
            if let patch = Self.patch(from: current, to: object) { writes.append(.patch(path: path, patch: patch)) }
        }
        // Slices go before Services, so no moment has a Service whose slices are half gone.
        let stale = observed.keys.filter { desired[$0] == nil }
        for path in stale.filter({ $0.contains("/endpointslices/") }).sorted() { writes.append(.delete(path: path)) }
        for path in stale.filter({ $0.contains("/services/") }).sorted() { writes.append(.delete(path: path)) }
        return Plan(writes: writes, skipped: skipped)
    }

    /// The registrations a slice the bridge wrote carries, for rebuilding the legacy side.
    public func registrations(in slice: JSON) -> [LegacyRegistration] {
        guard Self.isOwned(slice), let metadata = slice["metadata"],
              let name = metadata["labels"]?[EndpointSlice.serviceNameLabel]?.stringValue,
              let namespace = metadata["namespace"]?.stringValue,
              let text = metadata["annotations"]?[Self.registrationsAnnotation]?.stringValue,
              let hosts = (try? JSONReader.parse(text))?.arrayValue else { return [] }
        let service = Registry.qualifiedName(name, namespace: namespace, home: homeNamespace)
        return hosts.compactMap { host in
            guard let address = host["ip"]?.stringValue, let port = host["port"]?.intValue else { return nil }
            return LegacyRegistration(service: service, address: address, port: port,
                                      revision: host["revision"]?.stringValue ?? "",
                                      repository: host["repository"]?.stringValue,
                                      tags: host["tags"]?.objectValue ?? JSONObject())
        }
    }

    /// `web` is web in the home namespace; `web.shop` is web in shop. Anything else has no
    /// Kubernetes name.
    func target(of service: String) -> (namespace: String, name: String)? {
        let parts = service.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1 where Self.isLabel(parts[0]): return (homeNamespace, parts[0])
        case 2 where Self.isLabel(parts[0]) && Self.isLabel(parts[1]): return (parts[1], parts[0])
        default: return nil
        }
    }

    // MARK: Objects

    private static let servicesCollection = "services"
    private static let slicesCollection = "endpointslices"

    public static func servicePath(_ namespace: String, _ name: String) -> String {
        "/api/v1/namespaces/\(namespace)/services/\(name)"
    }

    public static func slicePath(_ namespace: String, _ name: String) -> String {
        "/apis/discovery.k8s.io/v1/namespaces/\(namespace)/endpointslices/\(name)"
    }

    private static func path(of object: JSON, collection: String) -> String? {
        guard let name = object["metadata"]?["name"]?.stringValue, let namespace = object["metadata"]?["namespace"]?.stringValue else {
            return nil
        }
        return collection == servicesCollection ? servicePath(namespace, name) : slicePath(namespace, name)
    }

    static func isOwned(_ object: JSON) -> Bool {
        let labels = object["metadata"]?["labels"]
        return labels?[serviceManagedByLabel]?.stringValue == manager || labels?[EndpointSlice.managedByLabel]?.stringValue == manager
    }

    private static func portName(_ port: Int) -> String { "tcp-\(port)" }

    /// The Service port legacy hosts on `port` serve: the one whose targetPort is that number,
    /// else the only port there is.
    private static func servicePortName(_ service: JSON, forTargetPort port: Int) -> String? {
        let ports = service["spec"]?["ports"]?.arrayValue ?? []
        if let exact = ports.first(where: { $0["targetPort"]?.intValue == port }) {
            return exact["name"]?.stringValue ?? ""
        }
        return ports.count == 1 ? ports[0]["name"]?.stringValue ?? "" : nil
    }

    private func serviceObject(namespace: String, name: String, ports: [Int]) -> JSON {
        [
            "apiVersion": "v1", "kind": "Service",
            "metadata": [
                "name": .string(name), "namespace": .string(namespace),
                "labels": .object(JSONObject([(Self.serviceManagedByLabel, .string(Self.manager))])),
            ],
            "spec": [
                "type": "ClusterIP",
                "ports": .array(ports.map { port in
                    ["name": .string(Self.portName(port)), "protocol": "TCP", "port": .integer(port), "targetPort": .integer(port)]
                }),
            ],
        ]
    }

    /// One slice per address family and port (a slice's ports apply to all its endpoints),
    /// split at the API's endpoint limit; names are stable so the next plan finds them.
    private func sliceObjects(namespace: String, service: String, hosts: [Endpoint], portNames: [Int: String]) -> [JSON] {
        var groups: [String: [Endpoint]] = [:]
        for host in hosts {
            let family = host.address.contains(":") ? "ipv6" : "ipv4"
            groups["\(family)-\(host.port)", default: []].append(host)
        }
        var slices: [JSON] = []
        for (group, members) in groups.sorted(by: { $0.key < $1.key }) {
            let sorted = members.sorted { ($0.address, $0.port) < ($1.address, $1.port) }
            for chunk in stride(from: 0, to: sorted.count, by: Self.maxEndpointsPerSlice) {
                let part = Array(sorted[chunk..<min(chunk + Self.maxEndpointsPerSlice, sorted.count)])
                let index = chunk / Self.maxEndpointsPerSlice
                let name = "\(service)-tandem-\(group)" + (index == 0 ? "" : "-\(index)")
                slices.append(sliceObject(namespace: namespace, name: name, service: service,
                                          addressType: group.hasPrefix("ipv6") ? "IPv6" : "IPv4",
                                          port: part[0].port, portName: portNames[part[0].port] ?? "", hosts: part))
            }
        }
        return slices
    }

    private func sliceObject(namespace: String, name: String, service: String, addressType: String, port: Int,
                             portName: String, hosts: [Endpoint]) -> JSON {
        let registrations: [JSON] = hosts.map { host in
            var record = JSONObject([("ip", .string(host.address)), ("port", .integer(host.port))])
            if case .legacy(let revision, let repository, let tags, _) = host.origin {
                record["revision"] = .string(revision)
                if let repository { record["repository"] = .string(repository) }
                record["tags"] = .object(tags)
            }
            return .object(record)
        }
        let endpoints: [JSON] = hosts.map { host in
            var endpoint = JSONObject([
                ("addresses", [.string(host.address)]),
                ("conditions", ["ready": true, "serving": true, "terminating": false]),
            ])
            if let zone = host.zone { endpoint["zone"] = .string(zone) }
            return .object(endpoint)
        }
        return [
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": [
                "name": .string(name), "namespace": .string(namespace),
                "labels": .object(JSONObject([
                    (EndpointSlice.serviceNameLabel, .string(service)),
                    (EndpointSlice.managedByLabel, .string(Self.manager)),
                    (Self.serviceManagedByLabel, .string(Self.manager)),
                ])),
                "annotations": .object(JSONObject([(Self.registrationsAnnotation, .string(JSONWriter.string(.array(registrations))))])),
            ],
            "addressType": .string(addressType),
            "ports": [["name": .string(portName), "protocol": "TCP", "port": .integer(port)]],
            "endpoints": .array(endpoints),
        ]
    }

    /// The merge patch that makes `current` hold what `desired` says, or nil when it already
    /// does. Only the fields the bridge sets are compared: the server adds its own.
    static func patch(from current: JSON, to desired: JSON) -> JSON? {
        var patch = JSONObject()
        var metadata = JSONObject()
        for field in ["labels", "annotations"] {
            guard let wanted = desired["metadata"]?[field]?.objectValue else { continue }
            let have = current["metadata"]?[field]?.objectValue ?? JSONObject()
            if zip(wanted.keys, wanted.values).contains(where: { have[$0.0] != $0.1 }) { metadata[field] = .object(wanted) }
        }
        if desired["kind"]?.stringValue == "Service" {
            let wantedPorts = desired["spec"]?["ports"] ?? .array([])
            if !samePorts(current["spec"]?["ports"], wantedPorts) { patch["spec"] = ["ports": wantedPorts] }
        } else {
            for field in ["addressType", "ports", "endpoints"] where current[field] != desired[field] {
                patch[field] = desired[field]
            }
        }
        guard !patch.isEmpty || !metadata.isEmpty else { return nil }
        if let version = current["metadata"]?["resourceVersion"] { metadata["resourceVersion"] = version }
        patch["metadata"] = .object(metadata)
        return .object(patch)
    }

    /// Service ports compared on what the bridge sets (the server adds nodePort and the like).
    private static func samePorts(_ current: JSON?, _ wanted: JSON) -> Bool {
        let have = current?.arrayValue ?? []
        let want = wanted.arrayValue ?? []
        guard have.count == want.count else { return false }
        return zip(have, want).allSatisfy { pair in
            ["name", "protocol", "port", "targetPort"].allSatisfy { pair.0[$0] == pair.1[$0] }
        }
    }

    /// An RFC 1035 label, as Service names and namespaces must be.
    private static func isLabel(_ text: String) -> Bool {
        guard let first = text.utf8.first, let last = text.utf8.last, text.utf8.count <= 63,
              (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), last != UInt8(ascii: "-") else { return false }
        return text.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }
    }
}
