import Document
import Kubernetes

/// Where one endpoint came from, and what the bridge knows of it.
public enum EndpointOrigin: Sendable, Equatable {
    /// From an EndpointSlice: the slice and the object behind the address.
    case kubernetes(slice: String, target: String?)
    /// Registered by a legacy host, kept alive by its heartbeats.
    case legacy(revision: String, repository: String?, tags: JSONObject, lastCheckIn: Double)
}

/// Envoy's health states, as the bridge derives them.
public enum EndpointHealth: String, Sendable, Equatable {
    case healthy = "HEALTHY"
    /// Terminating but still serving: finishes what it has, gets nothing new.
    case draining = "DRAINING"
    case unhealthy = "UNHEALTHY"
}

/// One address of a service, from either side.
public struct Endpoint: Sendable, Equatable {
    public var address: String
    public var port: Int
    public var health: EndpointHealth
    public var zone: String?
    public var origin: EndpointOrigin
}

/// A legacy host's registration (Lyft discovery's form fields).
public struct LegacyRegistration: Sendable, Equatable {
    public var service: String
    public var address: String
    public var port: Int
    public var revision: String
    public var repository: String?
    public var tags: JSONObject

    public init(service: String, address: String, port: Int, revision: String, repository: String? = nil,
                tags: JSONObject = JSONObject()) {
        self.service = service
        self.address = address
        self.port = port
        self.revision = revision
        self.repository = repository
        self.tags = tags
    }
}

/// Everything that changes the registry.
public enum RegistryEvent: Sendable {
    case sliceChanged(EndpointSlice)
    case sliceDeleted(namespace: String, name: String)
    /// A fresh list after a (re)connect or a 410: the whole Kubernetes side is replaced.
    case slicesListed([EndpointSlice])
    /// A registration or heartbeat at `time` (seconds since the epoch).
    case registered(LegacyRegistration, time: Double)
    /// A legacy host leaving; every port of the address when `port` is nil.
    case deregistered(service: String, address: String, port: Int?)
    /// The clock reached `time`: legacy hosts silent for longer than the TTL go.
    case tick(time: Double)
    /// The legacy hosts another bridge replica (the writer) mirrored into Kubernetes replace all
    /// legacy hosts known here, as checked in at `time`. A standby follows the writer this way,
    /// and a bridge that takes over starts from it, giving each host one TTL to heartbeat.
    case legacyMirrored([LegacyRegistration], time: Double)
}

/// The bridge's state: a pure reducer over Kubernetes events and legacy registrations.
///
/// Services are named as legacy fleets name them: a Kubernetes Service `web` in the default
/// namespace is `web`, elsewhere `web.<namespace>`; a legacy registration for `web` joins the
/// pods of that Service. Every change bumps `version`, and each service remembers the version of
/// its last change, so pollers can be told "nothing new" cheaply.
public struct Registry: Sendable {
    public var defaultNamespace: String
    /// Heartbeat TTL for legacy hosts, in seconds (Lyft's default is 600).
    public var ttl: Double
    /// Slices the bridge writes itself; reading them back would echo legacy hosts as pods.
    public var ownManager: String

    private var slices: [String: EndpointSlice] = [:]
    private var legacy: [String: [String: Endpoint]] = [:]
    public private(set) var version: UInt64 = 0
    private var serviceVersions: [String: UInt64] = [:]

    /// Versions count up from `startingVersion` (a server starts from its clock; see BridgeServer).
    public init(defaultNamespace: String = "default", ttl: Double = 600, ownManager: String = WriteBack.manager,
                startingVersion: UInt64 = 0) {
        self.defaultNamespace = defaultNamespace
        self.ttl = ttl
        self.ownManager = ownManager
        version = startingVersion
    }

    /// Applies one event and returns the services whose endpoints changed, sorted. The work is
    /// proportional to what the event touches: a heartbeat in a service of thousands of hosts
    /// looks at one host.
    @discardableResult
    public mutating func apply(_ event: RegistryEvent) -> [String] {
        var changed: Set<String> = []
        switch event {
        case .sliceChanged(let slice):
            let key = Self.key(slice.namespace, slice.name)
            let kept = slice.managedBy == ownManager ? nil : slice
            let old = slices[key]
            if old != kept {
                changed.formUnion([old, kept].compactMap { $0.flatMap(serviceName) })
                slices[key] = kept
            }
        case .sliceDeleted(let namespace, let name):
            if let old = slices.removeValue(forKey: Self.key(namespace, name)), let service = serviceName(old) {
                changed.insert(service)
            }
        case .slicesListed(let listed):
            let kept = Dictionary(listed.filter { $0.managedBy != ownManager }.map { (Self.key($0.namespace, $0.name), $0) },
                                  uniquingKeysWith: { $1 })
            for key in Set(slices.keys).union(kept.keys) where slices[key] != kept[key] {
                changed.formUnion([slices[key], kept[key]].compactMap { $0.flatMap(serviceName) })
            }
            slices = kept
        case .registered(let registration, let time):
            let hostKey = Self.key(registration.address, String(registration.port))
            let old = legacy[registration.service]?[hostKey]
            var tags = registration.tags
            if case .legacy(_, _, let previousTags, _) = old?.origin {
                // Lyft merges tags across heartbeats rather than replacing them.
                var merged = previousTags
                for (key, value) in zip(registration.tags.keys, registration.tags.values) { merged[key] = value }
                tags = merged
            }
            let new = Self.legacyEndpoint(registration, tags: tags, time: time)
            legacy[registration.service, default: [:]][hostKey] = new
            if old.map(Self.visible) != Self.visible(new) { changed.insert(registration.service) }
        case .deregistered(let service, let address, let port):
            let before = legacy[service]?.count ?? 0
            legacy[service] = legacy[service]?.filter { _, host in
                !(host.address == address && (port == nil || host.port == port))
            }
            if legacy[service]?.count ?? 0 != before { changed.insert(service) }
            if legacy[service]?.isEmpty == true { legacy[service] = nil }
        case .legacyMirrored(let registrations, let time):
            var mirrored: [String: [String: Endpoint]] = [:]
            for registration in registrations {
                mirrored[registration.service, default: [:]][Self.key(registration.address, String(registration.port))] =
                    Self.legacyEndpoint(registration, tags: registration.tags, time: time)
            }
            for service in Set(legacy.keys).union(mirrored.keys)
            where legacy[service]?.mapValues(Self.visible) != mirrored[service]?.mapValues(Self.visible) {
                changed.insert(service)
            }
            legacy = mirrored
        case .tick(let time):
            func isAlive(_ host: Endpoint) -> Bool {
                guard case .legacy(_, _, _, let lastCheckIn) = host.origin else { return true }
                return time - lastCheckIn <= ttl
            }
            // Runs every sweep over every host: allocate only where something expired.
            for (service, hosts) in legacy where !hosts.values.allSatisfy(isAlive) {
                let alive = hosts.filter { isAlive($0.value) }
                changed.insert(service)
                legacy[service] = alive.isEmpty ? nil : alive
            }
        }
        if !changed.isEmpty {
            version += 1
            for service in changed { serviceVersions[service] = version }
        }
        return changed.sorted()
    }

    /// Every service that has endpoints from either side, sorted.
    public var services: [String] {
        Set(slices.values.compactMap(serviceName)).union(legacy.keys).sorted()
    }

    /// The version of a service's last change (0 if it never had endpoints).
    public func version(of service: String) -> UInt64 { serviceVersions[service] ?? 0 }

    /// A service's endpoints: pods first (by address), then legacy hosts (by address and port).
    public func endpoints(of service: String) -> [Endpoint] {
        var result: [Endpoint] = []
        for slice in slices.values where serviceName(slice) == service {
            for endpoint in slice.endpoints {
                let health: EndpointHealth = endpoint.ready ? .healthy
                    : (endpoint.serving && endpoint.terminating ? .draining : .unhealthy)
                for address in endpoint.addresses {
                    for port in slice.ports {
                        result.append(Endpoint(address: address, port: port.port, health: health, zone: endpoint.zone,
                                               origin: .kubernetes(slice: slice.name, target: endpoint.target)))
                    }
                }
            }
        }
        result.sort { ($0.address, $0.port) < ($1.address, $1.port) }
        let hosts = (legacy[service] ?? [:]).values.sorted { ($0.address, $0.port) < ($1.address, $1.port) }
        return result + hosts
    }

    /// Legacy hosts of every service, for writing them back to Kubernetes.
    public var legacyServices: [String: [Endpoint]] {
        legacy.mapValues { $0.values.sorted { ($0.address, $0.port) < ($1.address, $1.port) } }
    }

    private func serviceName(_ slice: EndpointSlice) -> String? {
        slice.serviceName.map { Self.qualifiedName($0, namespace: slice.namespace, home: defaultNamespace) }
    }

    /// How a Kubernetes Service is named here: bare in the home namespace, `name.namespace` elsewhere.
    public static func qualifiedName(_ name: String, namespace: String, home: String) -> String {
        namespace == home ? name : name + "." + namespace
    }

    private static func legacyEndpoint(_ registration: LegacyRegistration, tags: JSONObject, time: Double) -> Endpoint {
        Endpoint(address: registration.address, port: registration.port, health: .healthy, zone: tags["az"]?.stringValue,
                 origin: .legacy(revision: registration.revision, repository: registration.repository, tags: tags,
                                 lastCheckIn: time))
    }

    /// What watchers see of an endpoint. Check-in times are left out: a heartbeat that changes
    /// nothing else must not wake every watcher or bump versions.
    private static func visible(_ endpoint: Endpoint) -> Endpoint {
        guard case .legacy(let revision, let repository, let tags, _) = endpoint.origin else { return endpoint }
        var visible = endpoint
        visible.origin = .legacy(revision: revision, repository: repository, tags: tags, lastCheckIn: 0)
        return visible
    }

    private static func key(_ first: String, _ second: String) -> String { first + "/" + second }
}
