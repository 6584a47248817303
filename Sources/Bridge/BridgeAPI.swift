import Document

/// One HTTP request as the bridge's API sees it, whatever carried it.
public struct APIRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    /// `Authorization` header, if any.
    public var authorization: String?
    public var contentType: String?
    public var body: [UInt8]

    public init(method: String, path: String, query: [String: String] = [:], authorization: String? = nil,
                contentType: String? = nil, body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.authorization = authorization
        self.contentType = contentType
        self.body = body
    }
}

/// The answer, and whether it changed the registry.
public struct APIResponse: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var changedServices: [String]
    /// The writer replica (`host:port`) this write belongs to: the shell hands it there and
    /// answers with the writer's answer, or with this response when it cannot.
    public var forwardTo: String? = nil

    static func json(_ status: Int, _ value: JSON, changed: [String] = []) -> APIResponse {
        var body = JSONWriter.write(value)
        body.append(UInt8(ascii: "\n"))
        return APIResponse(status: status, contentType: "application/json", body: body, changedServices: changed)
    }

    static func error(_ status: Int, _ message: String) -> APIResponse {
        json(status, ["error": .string(message)])
    }
}

/// Which bridge replica applies registrations. With several replicas only the holder of the
/// lease writes to Kubernetes, so only it may change the legacy side; the others follow it
/// through the API server.
public enum Writer: Sendable, Equatable {
    case this
    /// Another replica, at `address` (`host:port`): writes are forwarded there, so a legacy
    /// agent may register through any replica behind one Service.
    case other(address: String)
    /// None known yet (an election is under way): writes are refused for a moment.
    case unknown
}

/// The bridge's HTTP API as a function of a request, the registry and the clock: the Lyft v1
/// registration API, REST xDS, and a service list. Writes need a bearer token, because whoever
/// can register decides where traffic goes.
public struct BridgeAPI: Sendable {
    /// Tokens that may register; empty means registration is switched off.
    public var tokens: Set<String>
    /// Reported as `env` in Lyft answers.
    public var environment: String
    /// The cluster name through which Envoy reaches this bridge (for CDS answers).
    public var xdsCluster: String

    /// A registration is a handful of short fields; anything near this size is not one.
    public static let maxRegistrationBytes = 64 * 1024

    public init(tokens: Set<String>, environment: String = "production", xdsCluster: String = "tandem-bridge") {
        self.tokens = tokens
        self.environment = environment
        self.xdsCluster = xdsCluster
    }

    public func handle(_ request: APIRequest, registry: inout Registry, now: Double, writer: Writer = .this) -> APIResponse {
        switch (request.method, Route(path: request.path)) {
        case ("GET", .registration(let service)):
            return lyftHosts(service, registry: registry)
        case ("POST", .registration(let service)):
            if let refusal = authenticate(request) ?? notTheWriter(request, writer) { return refusal }
            guard request.body.count <= Self.maxRegistrationBytes else {
                return .error(413, "a registration body may hold at most \(Self.maxRegistrationBytes) bytes")
            }
            do {
                let registration = try LyftAPI.registration(service: service, body: request.body, contentType: request.contentType)
                let changed = registry.apply(.registered(registration, time: now))
                return .json(200, [:], changed: changed)
            } catch {
                return .error(error.status, error.message)
            }
        case ("DELETE", .registeredHost(let service, let host)):
            if let refusal = authenticate(request) ?? notTheWriter(request, writer) { return refusal }
            let (address, port) = Self.splitHost(host)
            guard registry.endpoints(of: service).contains(where: {
                if case .legacy = $0.origin { return $0.address == address && (port == nil || $0.port == port) }
                return false
            }) else {
                return .error(404, "no registration of \(host) for service \(service)")
            }
            return .json(200, [:], changed: registry.apply(.deregistered(service: service, address: address, port: port)))
        case ("POST", .discovery(let resource)):
            let xdsRequest: XDS.Request
            do {
                xdsRequest = try XDS.Request(body: request.body)
            } catch {
                return .error(error.status, error.message)
            }
            let answer = resource == "endpoints"
                ? XDS.endpoints(xdsRequest, registry: registry)
                : XDS.clusters(xdsRequest, registry: registry, edsCluster: xdsCluster)
            switch answer {
            case .unchanged: return APIResponse(status: 304, contentType: "application/json", body: [], changedServices: [])
            case .response(let json): return .json(200, json)
            }
        case ("GET", .services):
            let services: [JSON] = registry.services.map { service in
                let endpoints = registry.endpoints(of: service)
                return ["name": .string(service), "version": .string(String(registry.version(of: service))),
                        "endpoints": .array(endpoints.map(Self.describe))]
            }
            return .json(200, ["version": .string(String(registry.version)), "services": .array(services)])
        case (_, .unknown):
            return .error(404, "no such endpoint: \(request.path)")
        default:
            return .error(405, "method \(request.method) is not allowed on \(request.path)")
        }
    }

    /// The answer to a write this replica must not apply, or nil when it may.
    private func notTheWriter(_ request: APIRequest, _ writer: Writer) -> APIResponse? {
        switch writer {
        case .this:
            return nil
        case .other(let address):
            var response = APIResponse.error(503, "this bridge replica does not write and the writer at \(address) is out of reach; retry in a second")
            response.forwardTo = address
            return response
        case .unknown:
            return .error(503, "no bridge replica is the writer yet; retry in a second")
        }
    }

    /// The API's paths.
    private enum Route {
        case registration(String)
        case registeredHost(String, String)
        /// `endpoints` or `clusters`.
        case discovery(String)
        case services
        case unknown

        init(path: String) {
            let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
            switch segments.count {
            case 2 where segments[0] == "v1" && segments[1] == "services":
                self = .services
            case 2 where segments[0] == "v3" && (segments[1] == "discovery:endpoints" || segments[1] == "discovery:clusters"):
                self = .discovery(String(segments[1].dropFirst("discovery:".count)))
            case 3 where segments[0] == "v1" && segments[1] == "registration" && !segments[2].isEmpty:
                self = .registration(segments[2])
            case 4 where segments[0] == "v1" && segments[1] == "registration" && !segments[2].isEmpty && !segments[3].isEmpty:
                self = .registeredHost(segments[2], segments[3])
            default:
                self = .unknown
            }
        }
    }

    /// The Lyft answer for a service.
    private func lyftHosts(_ service: String, registry: Registry) -> APIResponse {
        .json(200, LyftAPI.hosts(service: service, env: environment, endpoints: registry.endpoints(of: service)))
    }

    /// nil when the request carries a known bearer token; else the refusal to send.
    private func authenticate(_ request: APIRequest) -> APIResponse? {
        guard !tokens.isEmpty else {
            return .error(403, "registration is switched off: start the bridge with --token-file")
        }
        guard let header = request.authorization, header.hasPrefix("Bearer ") else {
            return .error(401, "registration needs an Authorization: Bearer token")
        }
        let presented = Array(header.dropFirst("Bearer ".count).utf8)
        // Compare against every token in full, so timing does not tell how much of one matched.
        var matched = false
        for token in tokens where Self.constantTimeEqual(Array(token.utf8), presented) { matched = true }
        return matched ? nil : .error(401, "the bearer token is not valid")
    }

    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
        return difference == 0
    }

    /// `198.51.100.7`, `198.51.100.7:8080`, `2001:db8::1` or `[2001:db8::1]:8080`.
    static func splitHost(_ text: String) -> (String, Int?) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let address = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            return (address, rest.hasPrefix(":") ? Int(rest.dropFirst()) : nil)
        }
        let colons = text.filter { $0 == ":" }.count
        if colons == 1, let colon = text.firstIndex(of: ":") {
            return (String(text[..<colon]), Int(text[text.index(after: colon)...]))
        }
        return (text, nil)
    }

    static func describe(_ endpoint: Endpoint) -> JSON {
        var object: JSONObject = ["address": .string(endpoint.address), "port": .integer(endpoint.port),
                                  "health": .string(endpoint.health.rawValue)]
        switch endpoint.origin {
        case .kubernetes(let slice, let target):
            object["origin"] = "kubernetes"
            object["slice"] = .string(slice)
            if let target { object["target"] = .string(target) }
        case .legacy(let revision, _, _, let lastCheckIn):
            object["origin"] = "legacy"
            object["revision"] = .string(revision)
            object["lastCheckIn"] = .string(Timestamp.lyft(lastCheckIn))
        }
        if let zone = endpoint.zone { object["zone"] = .string(zone) }
        return .object(object)
    }
}
