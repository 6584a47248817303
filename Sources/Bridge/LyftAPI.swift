import Document
import Kubernetes

/// A request the bridge refuses, with the HTTP status and the reason.
public struct BridgeRequestError: Error, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String

    public init(status: Int = 400, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}

/// Lyft discovery's v1 registration API, which legacy fleets already speak: form-encoded
/// registrations (`ip`, `port`, `revision`, `tags` as a JSON string, `service_repo_name`) and
/// `{"service","env","hosts":[…]}` answers. A JSON body with the same fields is accepted too.
public enum LyftAPI {
    /// Reads a registration body; `contentType` picks form or JSON.
    public static func registration(service: String, body: [UInt8], contentType: String?) throws(BridgeRequestError) -> LegacyRegistration {
        try validate(serviceName: service)
        var fields: [String: JSON] = [:]
        if contentType?.lowercased().hasPrefix("application/json") == true {
            let value: JSON
            do {
                value = try JSONReader.parse(body)
            } catch {
                throw BridgeRequestError("body is not JSON: \(error)")
            }
            guard let object = value.objectValue else { throw BridgeRequestError("body must be a JSON object") }
            for (key, member) in object.members { fields[key] = member }
        } else {
            for (key, text) in try FormEncoding.decode(body) { fields[key] = .string(text) }
        }
        guard let address = fields["ip"]?.stringValue, !address.isEmpty else {
            throw BridgeRequestError("ip is required")
        }
        guard IPAddress.isValid(address) else { throw BridgeRequestError("ip \"\(address)\" is not an IPv4 or IPv6 address") }
        let portText = fields["port"]?.stringValue ?? fields["port"]?.numberText
        guard let portText, let port = Int(portText), (1...65535).contains(port) else {
            throw BridgeRequestError("port must be a number from 1 to 65535")
        }
        guard let revision = fields["revision"]?.stringValue, !revision.isEmpty else {
            throw BridgeRequestError("revision is required")
        }
        var tags = JSONObject()
        switch fields["tags"] {
        case nil, .null?:
            break
        case .object(let object)?:
            tags = object
        case .string(let text)?:
            guard let object = (try? JSONReader.parse(text))?.objectValue else {
                throw BridgeRequestError("tags must be a JSON object")
            }
            tags = object
        default:
            throw BridgeRequestError("tags must be a JSON object")
        }
        return LegacyRegistration(service: service, address: address, port: port, revision: revision,
                                  repository: fields["service_repo_name"]?.stringValue, tags: tags)
    }

    /// Service names become Kubernetes object names on write-back: DNS labels, dots for namespaces.
    public static func validate(serviceName: String) throws(BridgeRequestError) {
        let valid = !serviceName.isEmpty && serviceName.utf8.count <= 253 && serviceName.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        guard valid else {
            throw BridgeRequestError("service name \"\(serviceName)\" must be lower-case letters, digits, '-' and '.'")
        }
    }

    /// The answer to `GET /v1/registration/<service>`: hosts that take traffic, from both sides.
    public static func hosts(service: String, env: String, endpoints: [Endpoint]) -> JSON {
        let hosts: [JSON] = endpoints.filter { $0.health == .healthy }.map { endpoint in
            var host = JSONObject([("ip_address", .string(endpoint.address)), ("port", .integer(endpoint.port))])
            switch endpoint.origin {
            case .legacy(let revision, let repository, let tags, let lastCheckIn):
                host["revision"] = .string(revision)
                host["service"] = .string(service)
                host["service_repo_name"] = repository.map(JSON.string) ?? .null
                host["last_check_in"] = .string(Timestamp.lyft(lastCheckIn))
                host["tags"] = .object(tags)
            case .kubernetes(_, let target):
                host["revision"] = ""
                host["service"] = .string(service)
                host["service_repo_name"] = .null
                host["last_check_in"] = .null
                var tags = JSONObject()
                if let zone = endpoint.zone { tags["az"] = .string(zone) }
                if let target { tags["instance_id"] = .string(target) }
                tags["canary"] = false
                tags["load_balancing_weight"] = 1
                host["tags"] = .object(tags)
            }
            return .object(host)
        }
        return ["service": .string(service), "env": .string(env), "hosts": .array(hosts)]
    }
}

/// `application/x-www-form-urlencoded`, as legacy agents send it.
enum FormEncoding {
    static func decode(_ body: [UInt8]) throws(BridgeRequestError) -> [(String, String)] {
        var fields: [(String, String)] = []
        for pair in body.split(separator: UInt8(ascii: "&")) where !pair.isEmpty {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let key = try percentDecode(parts[0])
            let value = parts.count > 1 ? try percentDecode(parts[1]) : ""
            fields.append((key, value))
        }
        return fields
    }

    private static func percentDecode(_ bytes: ArraySlice<UInt8>) throws(BridgeRequestError) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                output.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) else {
                    throw BridgeRequestError("malformed percent-encoding in form body")
                }
                output.append(high << 4 | low)
                index += 2
            } else {
                output.append(byte)
            }
            index += 1
        }
        guard let text = String(validating: output, as: UTF8.self) else {
            throw BridgeRequestError("form body is not UTF-8")
        }
        return text
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Textual IP address checks, without the C library's lenient forms (`1.2.3`, `0x7f.1`).
enum IPAddress {
    static func isValid(_ text: String) -> Bool {
        isIPv4(text) || isIPv6(text)
    }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber)
                && (part.count == 1 || part.first != "0") && (Int(part) ?? 256) <= 255
        }
    }

    static func isIPv6(_ text: String) -> Bool {
        guard text.contains(":"), text.utf8.count <= 45 else { return false }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return false }
        var groups = 0
        for (index, half) in halves.enumerated() where !half.isEmpty {
            let parts = half.split(separator: ":", omittingEmptySubsequences: false)
            for (position, part) in parts.enumerated() {
                if position == parts.count - 1, index == halves.count - 1, isIPv4(String(part)) {
                    groups += 2
                    continue
                }
                guard (1...4).contains(part.count), part.allSatisfy(\.isHexDigit) else { return false }
                groups += 1
            }
        }
        return halves.count == 2 ? groups < 8 : groups == 8
    }
}

/// Times as Lyft discovery wrote them: Python's `str(datetime)` of a UTC time, which is RFC 3339
/// with a space for the `T` and no zone.
enum Timestamp {
    static func lyft(_ seconds: Double) -> String {
        let whole = seconds.rounded(.down)
        let time = MicroTime(seconds: Int64(whole), microseconds: Int64(((seconds - whole) * 1_000_000).rounded(.down)))
        var text = Array(time.rfc3339)
        text[10] = " "
        return String(text.dropLast())
    }
}
