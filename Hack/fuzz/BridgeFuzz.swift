// libFuzzer entry point for the discovery bridge's API: what legacy hosts and Envoy send it over
// the network (Lyft v1 registrations and deregistrations, REST xDS requests, reads) and the
// EndpointSlices that the Kubernetes watch delivers, applied in any order to one registry.
// Compiled with the Document and Kubernetes modules, in one module with the bridge's pure files
// (see Hack/fuzz/run). Beyond "does not crash", every step checks what the API promises: answers are
// JSON, only authenticated writes change the registry, a registration is visible at once and a
// deregistration gone at once, and an xDS poll with the version just served is told "unchanged".
import Document
import Kubernetes

let token = "fuzz-token"
let api = BridgeAPI(tokens: [token])
let services = ["web", "db.shop", "cache", "a-b.c"]
let statuses: Set<Int> = [200, 304, 400, 401, 403, 404, 405, 413]

/// Reads the fuzzer's bytes as a script: each step is an opcode byte, a length (two bytes, least
/// significant first) and that many bytes of payload (fewer at the end of the input).
struct Script {
    var bytes: [UInt8]
    var index = 0

    mutating func next() -> (opcode: UInt8, payload: [UInt8])? {
        guard index + 2 < bytes.count else { return nil }
        let opcode = bytes[index]
        let length = Int(bytes[index + 1]) | Int(bytes[index + 2]) << 8
        let end = min(bytes.count, index + 3 + length)
        defer { index = end }
        return (opcode, Array(bytes[index + 3..<end]))
    }
}

/// The service a step is about: one of a few valid names, or (rarely) the payload's first bytes,
/// so that invalid names reach the API too.
func service(_ selector: UInt8, _ payload: [UInt8]) -> String {
    if selector & 0x0F == 0x0F { return String(decoding: payload.prefix(8), as: UTF8.self) }
    return services[Int(selector & 0x0F) % services.count]
}

/// A valid token, none, a wrong one, or another scheme.
func authorization(_ selector: UInt8) -> String? {
    switch selector >> 6 {
    case 0: "Bearer \(token)"
    case 1: nil
    case 2: "Bearer not-\(token)"
    default: "Basic \(token)"
    }
}

/// Every answer with a body is JSON, and its status one the API documents.
func checkAnswer(_ response: APIResponse, _ request: APIRequest) {
    precondition(statuses.contains(response.status), "status \(response.status) for \(request.method) \(request.path)")
    if response.status == 304 {
        precondition(response.body.isEmpty, "a 304 with a body")
        return
    }
    precondition(response.contentType == "application/json", "answer is \(response.contentType)")
    precondition((try? JSONReader.parse(response.body)) != nil, "the answer to \(request.method) \(request.path) is not JSON")
}

func hasLegacyHost(_ registry: Registry, _ service: String, _ address: String, _ port: Int) -> Bool {
    registry.endpoints(of: service).contains { endpoint in
        if case .legacy = endpoint.origin { return endpoint.address == address && endpoint.port == port }
        return false
    }
}

func run(_ bytes: [UInt8]) {
    var registry = Registry()
    var script = Script(bytes: bytes)
    var now = 1_800_000_000.0
    while let (opcode, payload) = script.next() {
        let selector = payload.first ?? 0
        let body = Array(payload.dropFirst())
        let name = service(selector, body)
        let versionBefore = registry.version
        var request: APIRequest
        switch opcode % 8 {
        case 0:
            // A registration: the payload as a form or as JSON.
            let contentType = selector & 0x10 == 0 ? "application/x-www-form-urlencoded" : "application/json"
            request = APIRequest(method: "POST", path: "/v1/registration/\(name)", authorization: authorization(selector),
                                 contentType: contentType, body: body)
        case 1:
            // A registration that is valid but for the fuzzed address and port.
            let port = 1 + Int(body.first ?? 0) * 256 + Int(body.dropFirst().first ?? 0)
            let address = body.count > 3 ? "10.0.\(body[2]).\(body[3])" : "2001:db8::\(selector)"
            let form = "ip=\(address)&port=\(port)&revision=r\(selector)&tags=%7B%22az%22%3A%22a%22%7D"
            request = APIRequest(method: "POST", path: "/v1/registration/\(name)", authorization: authorization(selector),
                                 contentType: "application/x-www-form-urlencoded", body: Array(form.utf8))
        case 2:
            // A deregistration of one of the hosts registered so far, or of a fuzzed one.
            let known = registry.endpoints(of: name).filter { if case .legacy = $0.origin { true } else { false } }
            let host = known.isEmpty || selector & 0x20 != 0
                ? String(decoding: body, as: UTF8.self)
                : { let endpoint = known[Int(selector) % known.count]
                    return endpoint.address.contains(":") ? "[\(endpoint.address)]:\(endpoint.port)" : "\(endpoint.address):\(endpoint.port)" }()
            request = APIRequest(method: "DELETE", path: "/v1/registration/\(name)/\(host)", authorization: authorization(selector))
        case 3, 4:
            // REST xDS: the payload as a DiscoveryRequest.
            let resource = opcode % 8 == 3 ? "endpoints" : "clusters"
            request = APIRequest(method: "POST", path: "/v3/discovery:\(resource)", body: body)
        case 5:
            // Any method on any path.
            let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
            request = APIRequest(method: methods[Int(selector) % methods.count], path: String(decoding: body, as: UTF8.self),
                                 authorization: authorization(selector), body: body)
        case 6:
            // An EndpointSlice from the watch, or its deletion, or time passing.
            if let value = try? JSONReader.parse(body), let slice = EndpointSlice(value) {
                if selector & 1 == 0 {
                    registry.apply(.sliceChanged(slice))
                } else {
                    registry.apply(.sliceDeleted(namespace: slice.namespace, name: slice.name))
                }
            } else {
                now += Double(selector) * 10
                registry.apply(.tick(time: now))
            }
            continue
        default:
            request = APIRequest(method: "GET", path: selector & 1 == 0 ? "/v1/services" : "/v1/registration/\(name)")
        }

        let response = api.handle(request, registry: &registry, now: now)
        checkAnswer(response, request)
        let authenticated = request.authorization == "Bearer \(token)"
        let isWrite = request.method == "POST" && request.path.hasPrefix("/v1/registration/") || request.method == "DELETE"
        if !(isWrite && authenticated) {
            precondition(registry.version == versionBefore, "\(request.method) \(request.path) changed the registry")
        }
        if isWrite && !authenticated && (request.method == "DELETE" || request.path.hasPrefix("/v1/registration/")) {
            precondition(response.status >= 400, "an unauthenticated write was accepted")
        }
        // The service and host a write named, from its path as the API reads it.
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if response.status == 200, request.method == "POST", segments.count == 4 {
            guard let registration = try? LyftAPI.registration(service: segments[3], body: request.body, contentType: request.contentType) else {
                preconditionFailure("a registration was accepted that does not read")
            }
            precondition(hasLegacyHost(registry, segments[3], registration.address, registration.port), "a registered host is not listed")
        }
        if response.status == 200, request.method == "DELETE", segments.count == 5 {
            let (address, port) = BridgeAPI.splitHost(segments[4])
            precondition(!registry.endpoints(of: segments[3]).contains { endpoint in
                if case .legacy = endpoint.origin { return endpoint.address == address && (port == nil || endpoint.port == port) }
                return false
            }, "a deregistered host is still listed")
        }
        if response.status == 200, request.path.hasPrefix("/v3/discovery:"),
           let version = (try? JSONReader.parse(response.body))?["version_info"]?.stringValue,
           var again = try? XDS.Request(body: request.body) {
            // Polling again with the version just served is "nothing new".
            again.versionInfo = version
            let answer = request.path.hasSuffix("endpoints")
                ? XDS.endpoints(again, registry: registry)
                : XDS.clusters(again, registry: registry, edsCluster: api.xdsCluster)
            precondition(answer == .unchanged, "a poll with the version just served got a new answer")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
