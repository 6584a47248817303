import Document
import Kubernetes

/// The `tandem.io/*` annotations of a pod template, validated. Every key under the prefix must
/// be known: a misspelt override that is silently ignored is the complaint users raise most.
struct PodAnnotations: Sendable, Equatable {
    static let prefix = "tandem.io/"
    static let inject = "tandem.io/inject"
    static let status = "tandem.io/status"

    enum Key: String, CaseIterable {
        case inject = "tandem.io/inject"
        case proxyImage = "tandem.io/proxy-image"
        case proxyCPURequest = "tandem.io/proxy-cpu-request"
        case proxyCPULimit = "tandem.io/proxy-cpu-limit"
        case proxyMemoryRequest = "tandem.io/proxy-memory-request"
        case proxyMemoryLimit = "tandem.io/proxy-memory-limit"
        case inboundPorts = "tandem.io/inbound-ports"
        case excludeInboundPorts = "tandem.io/exclude-inbound-ports"
        case excludeOutboundPorts = "tandem.io/exclude-outbound-ports"
        case lifecycle = "tandem.io/lifecycle"
        case drainSeconds = "tandem.io/drain-seconds"
        case drainDelay = "tandem.io/drain-delay"
        case logLevel = "tandem.io/log-level"
        /// The image's ENTRYPOINT as a JSON list, for legacy-mode app containers that state no
        /// command (the injector cannot see inside images): lets `tandem supervise` wrap them.
        case entrypoint = "tandem.io/entrypoint"
        /// Written by the injector itself.
        case status = "tandem.io/status"
    }

    /// nil when not annotated; false for `disabled`.
    var inject: Bool?
    var proxyImage: String?
    var cpuRequest: ResourceQuantity?
    var cpuLimit: ResourceQuantity?
    var memoryRequest: ResourceQuantity?
    var memoryLimit: ResourceQuantity?
    var inboundPorts: [Int]?
    var excludeInboundPorts: [Int]?
    var excludeOutboundPorts: [Int]?
    var lifecycle: LifecycleMode?
    var drainSeconds: Int?
    var drainDelay: Int?
    var logLevel: LogLevel?
    var entrypoint: [String]?

    init() {}

    /// Sets what the pod overrides of the plan's proxy settings. A plan the pod overrides nothing
    /// of keeps sharing the config's settings.
    func override(_ plan: inout ProxyPlan) {
        guard proxyImage != nil || overridesResources || drainSeconds != nil || drainDelay != nil || logLevel != nil
        else { return }
        var proxy = plan.proxy
        defer { plan.proxy = proxy }
        if let proxyImage { proxy.image = proxyImage }
        if let cpuRequest { proxy.resources.cpuRequest = cpuRequest }
        if let cpuLimit { proxy.resources.cpuLimit = cpuLimit }
        if let memoryRequest { proxy.resources.memoryRequest = memoryRequest }
        if let memoryLimit { proxy.resources.memoryLimit = memoryLimit }
        if let drainSeconds { proxy.drainSeconds = drainSeconds }
        if let drainDelay { proxy.drainDelaySeconds = drainDelay }
        if let logLevel { proxy.logLevel = logLevel }
    }

    /// Whether any of the proxy's resources is set here: only such overrides can clash.
    var overridesResources: Bool {
        cpuRequest != nil || cpuLimit != nil || memoryRequest != nil || memoryLimit != nil
    }

    /// Reads the annotations map of a template's metadata; `pointer` locates that map.
    init(_ annotations: JSONObject?, at pointer: [String]) throws(InjectionError) {
        guard let annotations else { return }
        try read(annotations, at: pointer)
    }

    /// The body of `init`, apart so that `init` stays small enough to be inlined: built in the
    /// init itself, the struct's fourteen fields were copied into the caller's and destroyed.
    private mutating func read(_ annotations: JSONObject, at pointer: [String]) throws(InjectionError) {
        for (key, value) in annotations.members where key.hasPrefix(Self.prefix) {
            let fail = { (problem: String) in
                InjectionError(pointer: pointer + [key], message: "annotation \(key): \(problem)")
            }
            guard let known = Key(rawValue: key) else {
                let suggestion = Self.closestKey(to: key).map { " (did you mean \($0)?)" } ?? ""
                throw fail("unknown annotation\(suggestion)")
            }
            guard let text = value.stringValue else {
                throw fail("expected a string, got \(value.typeName)")
            }
            let quoted = "\"\(text)\""
            switch known {
            case .inject:
                guard text == "enabled" || text == "disabled" else { throw fail("\(quoted) must be enabled or disabled") }
                inject = text == "enabled"
            case .proxyImage:
                guard isImageReference(text) else { throw fail("\(quoted) is not an image reference") }
                proxyImage = text
            case .proxyCPURequest, .proxyCPULimit, .proxyMemoryRequest, .proxyMemoryLimit:
                guard let quantity = ResourceQuantity(text) else { throw fail("\(quoted) is not a Kubernetes quantity") }
                switch known {
                case .proxyCPURequest: cpuRequest = quantity
                case .proxyCPULimit: cpuLimit = quantity
                case .proxyMemoryRequest: memoryRequest = quantity
                default: memoryLimit = quantity
                }
            case .inboundPorts, .excludeInboundPorts, .excludeOutboundPorts:
                guard let ports = Self.ports(text) else {
                    throw fail("\(quoted) is not a comma-separated list of ports 1-65535")
                }
                switch known {
                case .inboundPorts: inboundPorts = ports
                case .excludeInboundPorts: excludeInboundPorts = ports
                default: excludeOutboundPorts = ports
                }
            case .lifecycle:
                guard let mode = LifecycleMode(rawValue: text) else { throw fail("\(quoted) must be auto, native or legacy") }
                lifecycle = mode
            case .drainSeconds, .drainDelay:
                guard let seconds = Self.seconds(text) else { throw fail("\(quoted) is not a whole number of seconds") }
                if known == .drainSeconds { drainSeconds = seconds } else { drainDelay = seconds }
            case .logLevel:
                guard let level = LogLevel(rawValue: text) else {
                    throw fail("\(quoted) must be trace, debug, info, warn or error")
                }
                logLevel = level
            case .entrypoint:
                guard let words = (try? JSONReader.parse(text))?.arrayValue, !words.isEmpty,
                      words.allSatisfy({ !($0.stringValue ?? "").isEmpty })
                else { throw fail("\(quoted) must be a JSON list of strings, like [\"/app\", \"serve\"]") }
                entrypoint = words.compactMap(\.stringValue)
            case .status:
                break
            }
        }
    }

    /// `80, 443,8080` → [80, 443, 8080], duplicates dropped; an empty value is an empty list.
    static func ports(_ text: String) -> [Int]? {
        var ports: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingSpaces
            if trimmed.isEmpty, text.trimmingSpaces.isEmpty { continue }
            guard trimmed.count <= 5, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let port = Int(trimmed), (1...65535).contains(port)
            else { return nil }
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }

    static func seconds(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              let seconds = Int(text), seconds <= 86_400
        else { return nil }
        return seconds
    }

    /// The known key nearest to a misspelt one, if it is close enough to be a typo.
    static func closestKey(to key: String) -> String? {
        let candidates = Key.allCases.filter { $0 != .status }.map(\.rawValue)
        let scored = candidates.map { ($0, editDistance(Array(key), Array($0))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 3 else { return nil }
        return best.0
    }

    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
