import Document

/// Envoy's REST-JSON xDS (transport v3): a stock Envoy polls `POST /v3/discovery:endpoints` and
/// `:clusters` with a DiscoveryRequest and gets the whole state of what it asked for, or a 304
/// when its `version_info` is already current.
public enum XDS {
    public static let endpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    public static let clusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

    /// What Envoy asks for (the fields the bridge uses).
    public struct Request: Sendable, Equatable {
        public var versionInfo: String?
        public var resourceNames: [String]
        public var typeURL: String?
        public var nodeID: String?

        public init(versionInfo: String? = nil, resourceNames: [String] = [], typeURL: String? = nil, nodeID: String? = nil) {
            self.versionInfo = versionInfo
            self.resourceNames = resourceNames
            self.typeURL = typeURL
            self.nodeID = nodeID
        }

        public init(body: [UInt8]) throws(BridgeRequestError) {
            let value: JSON
            do {
                value = try JSONReader.parse(body)
            } catch {
                throw BridgeRequestError("DiscoveryRequest is not JSON: \(error)")
            }
            guard case .object = value else { throw BridgeRequestError("DiscoveryRequest must be a JSON object") }
            versionInfo = value["version_info"]?.stringValue
            typeURL = value["type_url"]?.stringValue
            nodeID = value["node"]?["id"]?.stringValue
            guard let names = value["resource_names"]?.arrayValue ?? (value["resource_names"] == nil ? [] : nil) else {
                throw BridgeRequestError("resource_names must be a list of strings")
            }
            resourceNames = try names.map { name throws(BridgeRequestError) in
                guard let text = name.stringValue else { throw BridgeRequestError("resource_names must be a list of strings") }
                return text
            }
        }
    }

    public enum Answer: Sendable, Equatable {
        /// 304: the caller already holds this version.
        case unchanged
        /// 200 with a DiscoveryResponse.
        case response(JSON)
    }

    /// EDS: one ClusterLoadAssignment per requested service (every service when none is named).
    /// A service without endpoints gets an assignment with `endpoints: []`, so scaling to zero is
    /// seen as such rather than ignored.
    public static func endpoints(_ request: Request, registry: Registry) -> Answer {
        let names = request.resourceNames.isEmpty ? registry.services : request.resourceNames.sorted()
        let version = String(names.map(registry.version(of:)).max() ?? 0)
        if request.versionInfo == version { return .unchanged }
        let resources = names.map { clusterLoadAssignment($0, endpoints: registry.endpoints(of: $0)) }
        return .response(discoveryResponse(version: version, type: endpointType, resources: resources))
    }

    /// CDS: an EDS cluster per service whose endpoints come from this bridge (`edsCluster` is the
    /// name of the cluster through which the caller reaches the bridge).
    public static func clusters(_ request: Request, registry: Registry, edsCluster: String, refreshDelay: String = "1s") -> Answer {
        let names = registry.services
        let version = String(registry.version) + "-" + String(names.count)
        if request.versionInfo == version { return .unchanged }
        let resources: [JSON] = names.map { name in
            [
                "@type": .string(clusterType),
                "name": .string(name),
                "type": "EDS",
                "connect_timeout": "1s",
                "eds_cluster_config": [
                    "service_name": .string(name),
                    "eds_config": [
                        "resource_api_version": "V3",
                        "api_config_source": [
                            "api_type": "REST",
                            "transport_api_version": "V3",
                            "cluster_names": [.string(edsCluster)],
                            "refresh_delay": .string(refreshDelay),
                        ],
                    ],
                ],
            ]
        }
        return .response(discoveryResponse(version: version, type: clusterType, resources: resources))
    }

    /// The ClusterLoadAssignment of one service, endpoints grouped by zone.
    public static func clusterLoadAssignment(_ service: String, endpoints: [Endpoint]) -> JSON {
        var zones: [String] = []
        var byZone: [String: [JSON]] = [:]
        for endpoint in endpoints {
            let zone = endpoint.zone ?? ""
            if byZone[zone] == nil { zones.append(zone) }
            byZone[zone, default: []].append([
                "endpoint": ["address": ["socket_address": ["address": .string(endpoint.address),
                                                            "port_value": .integer(endpoint.port)]]],
                "health_status": .string(endpoint.health.rawValue),
            ])
        }
        let localities: [JSON] = zones.map { zone in
            var locality = JSONObject()
            if !zone.isEmpty { locality["locality"] = ["zone": .string(zone)] }
            locality["lb_endpoints"] = .array(byZone[zone] ?? [])
            return .object(locality)
        }
        return ["@type": .string(endpointType), "cluster_name": .string(service), "endpoints": .array(localities)]
    }

    private static func discoveryResponse(version: String, type: String, resources: [JSON]) -> JSON {
        ["version_info": .string(version), "type_url": .string(type), "nonce": .string(version), "resources": .array(resources)]
    }
}
