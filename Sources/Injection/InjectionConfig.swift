import Document
import Kubernetes

/// Proxy log levels, as `TANDEM_LOG_LEVEL` takes them.
public enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, warn, error
}

/// Requests and limits of the proxy container; nil means "not set".
public struct ProxyResources: Sendable, Equatable {
    public var cpuRequest: ResourceQuantity?
    public var memoryRequest: ResourceQuantity?
    public var cpuLimit: ResourceQuantity?
    public var memoryLimit: ResourceQuantity?

    public init(cpuRequest: ResourceQuantity? = nil, memoryRequest: ResourceQuantity? = nil,
                cpuLimit: ResourceQuantity? = nil, memoryLimit: ResourceQuantity? = nil) {
        self.cpuRequest = cpuRequest
        self.memoryRequest = memoryRequest
        self.cpuLimit = cpuLimit
        self.memoryLimit = memoryLimit
    }

    /// The container's `resources` value, leaving out what is not set.
    var json: JSON {
        var requests = JSONObject()
        requests["cpu"] = cpuRequest.map { .string($0.text) }
        requests["memory"] = memoryRequest.map { .string($0.text) }
        var limits = JSONObject()
        limits["cpu"] = cpuLimit.map { .string($0.text) }
        limits["memory"] = memoryLimit.map { .string($0.text) }
        var resources = JSONObject()
        if !requests.isEmpty { resources["requests"] = .object(requests) }
        if !limits.isEmpty { resources["limits"] = .object(limits) }
        return .object(resources)
    }

    /// Kubernetes rejects a pod whose request exceeds its limit; say which one does.
    var conflict: String? {
        for (resource, request, limit) in [("cpu", cpuRequest, cpuLimit), ("memory", memoryRequest, memoryLimit)] {
            if let request, let limit, request.value > limit.value {
                return "proxy \(resource) request \(request) exceeds its limit \(limit)"
            }
        }
        return nil
    }
}

/// Everything the injector needs to know that is not in the pod: built-in defaults, overridden
/// by the `proxy:` and `injection:` blocks of the Helm chart's values.
public struct InjectionConfig: Sendable, Equatable {
    public struct Proxy: Sendable, Equatable {
        public var image = "ghcr.io/tandem-mesh/tandem:0.1.0"
        public var imagePullPolicy = "IfNotPresent"
        /// Loopback-only admin API (`/ready`, `/quitquitquit`); never exposed as a container port.
        public var adminPort = 15000
        /// The port kubelet probes reach, exposed as `tandem-health`.
        public var healthPort = 15021
        public var uid = 2102
        public var logLevel = LogLevel.info
        public var drainSeconds = 30
        public var drainDelaySeconds = 0
        public var startTimeoutSeconds = 120
        public var resources = ProxyResources(
            cpuRequest: ResourceQuantity("50m"), memoryRequest: ResourceQuantity("64Mi"),
            cpuLimit: ResourceQuantity("1"), memoryLimit: ResourceQuantity("256Mi"))
    }

    public struct Injection: Sendable, Equatable {
        /// The global kill switch.
        public var enabled = true
        /// The lifecycle mode used when a pod does not choose one.
        public var mode = LifecycleMode.auto
        public var excludedNamespaces = ["kube-system", "kube-public", "kube-node-lease"]
        /// Where legacy mode mounts the `tandem` binary in app containers.
        public var binaryMountPath = "/tandem/bin"
    }

    public var proxy = Proxy()
    public var injection = Injection()

    public static let defaults = InjectionConfig()

    public init() {}

    /// The defaults overridden by `values` (`{proxy: {...}, injection: {...}}`; null means none).
    /// Unknown keys and mistyped values are errors naming their path, since a misspelt setting
    /// that is silently ignored is worse than one that stops the install.
    public init(values: JSON) throws(InjectionError) {
        let reader = ValuesReader()
        try reader.read(values, into: &self)
    }
}

/// Reads Helm-style values onto a config, tracking the path for messages.
private struct ValuesReader {
    func read(_ values: JSON, into config: inout InjectionConfig) throws(InjectionError) {
        if values.isNull { return }
        try members(of: values, at: []) { (key, value, path) throws(InjectionError) in
            switch key {
            case "proxy": try readProxy(value, at: path, into: &config.proxy)
            case "injection": try readInjection(value, at: path, into: &config.injection)
            default: throw unknownKey(path)
            }
        }
        if config.proxy.adminPort == config.proxy.healthPort {
            throw InjectionError(pointer: ["proxy", "healthPort"],
                                 message: "proxy.healthPort: must differ from proxy.adminPort (\(config.proxy.adminPort))")
        }
        if let conflict = config.proxy.resources.conflict {
            throw InjectionError(pointer: ["proxy", "resources"], message: "proxy.resources: \(conflict)")
        }
    }

    private func readProxy(_ value: JSON, at path: [String], into proxy: inout InjectionConfig.Proxy) throws(InjectionError) {
        try members(of: value, at: path) { (key, value, path) throws(InjectionError) in
            switch key {
            case "image": proxy.image = try imageReference(value, at: path)
            case "imagePullPolicy":
                proxy.imagePullPolicy = try oneOf(["Always", "IfNotPresent", "Never"], value, at: path)
            case "adminPort": proxy.adminPort = try integer(value, in: 1...65535, at: path)
            case "healthPort": proxy.healthPort = try integer(value, in: 1...65535, at: path)
            case "uid": proxy.uid = try integer(value, in: 1...2_147_483_647, at: path)
            case "logLevel":
                proxy.logLevel = LogLevel(rawValue: try oneOf(LogLevel.allCases.map(\.rawValue), value, at: path))!
            case "drainSeconds": proxy.drainSeconds = try integer(value, in: 0...86_400, at: path)
            case "drainDelaySeconds": proxy.drainDelaySeconds = try integer(value, in: 0...86_400, at: path)
            case "startTimeoutSeconds": proxy.startTimeoutSeconds = try integer(value, in: 1...86_400, at: path)
            case "resources": try readResources(value, at: path, into: &proxy.resources)
            default: throw unknownKey(path)
            }
        }
    }

    private func readResources(_ value: JSON, at path: [String], into resources: inout ProxyResources) throws(InjectionError) {
        try members(of: value, at: path) { (key, value, path) throws(InjectionError) in
            guard key == "requests" || key == "limits" else { throw unknownKey(path) }
            try members(of: value, at: path) { (resource, value, path) throws(InjectionError) in
                let quantity = try quantity(value, at: path)
                switch (key, resource) {
                case ("requests", "cpu"): resources.cpuRequest = quantity
                case ("requests", "memory"): resources.memoryRequest = quantity
                case ("limits", "cpu"): resources.cpuLimit = quantity
                case ("limits", "memory"): resources.memoryLimit = quantity
                default: throw unknownKey(path)
                }
            }
        }
    }

    private func readInjection(_ value: JSON, at path: [String], into injection: inout InjectionConfig.Injection) throws(InjectionError) {
        try members(of: value, at: path) { (key, value, path) throws(InjectionError) in
            switch key {
            case "enabled":
                guard let bool = value.boolValue else { throw wrongType("a boolean", value, path) }
                injection.enabled = bool
            case "mode":
                injection.mode = LifecycleMode(rawValue: try oneOf(LifecycleMode.allCases.map(\.rawValue), value, at: path))!
            case "excludedNamespaces":
                guard let array = value.arrayValue else { throw wrongType("an array of namespace names", value, path) }
                var names: [String] = []
                for (index, element) in array.enumerated() {
                    guard let name = element.stringValue, !name.isEmpty else {
                        throw wrongType("a namespace name", element, path + [String(index)])
                    }
                    names.append(name)
                }
                injection.excludedNamespaces = names
            case "binaryMountPath":
                guard let mountPath = value.stringValue, mountPath.hasPrefix("/"), mountPath.count > 1,
                      !mountPath.contains(":")
                else { throw wrongType("an absolute path", value, path) }
                injection.binaryMountPath = mountPath
            default: throw unknownKey(path)
            }
        }
    }

    // MARK: Typed readers

    private func members(
        of value: JSON, at path: [String],
        _ body: (String, JSON, [String]) throws(InjectionError) -> Void
    ) throws(InjectionError) {
        guard let object = value.objectValue else { throw wrongType("an object", value, path) }
        for (key, member) in object.members {
            try body(key, member, path + [key])
        }
    }

    private func integer(_ value: JSON, in range: ClosedRange<Int>, at path: [String]) throws(InjectionError) -> Int {
        guard let number = value.intValue, range.contains(number) else {
            throw wrongType("an integer \(range.lowerBound)-\(range.upperBound)", value, path)
        }
        return number
    }

    private func oneOf(_ choices: [String], _ value: JSON, at path: [String]) throws(InjectionError) -> String {
        guard let string = value.stringValue, choices.contains(string) else {
            throw wrongType("one of \(choices.joined(separator: ", "))", value, path)
        }
        return string
    }

    private func imageReference(_ value: JSON, at path: [String]) throws(InjectionError) -> String {
        guard let image = value.stringValue, isImageReference(image) else {
            throw wrongType("an image reference", value, path)
        }
        return image
    }

    /// A quantity may be written as a YAML number (`cpu: 1`) or a string; null unsets it.
    private func quantity(_ value: JSON, at path: [String]) throws(InjectionError) -> ResourceQuantity? {
        if value.isNull { return nil }
        guard let text = value.stringValue ?? value.numberText, let quantity = ResourceQuantity(text) else {
            throw wrongType("a Kubernetes quantity", value, path)
        }
        return quantity
    }

    private func wrongType(_ expected: String, _ value: JSON, _ path: [String]) -> InjectionError {
        InjectionError(pointer: path, message: "\(path.joined(separator: ".")): expected \(expected), got \(describe(value))")
    }

    private func unknownKey(_ path: [String]) -> InjectionError {
        InjectionError(pointer: path, message: "\(path.joined(separator: ".")): unknown setting")
    }
}

/// Loose check of an image reference: non-empty, no whitespace. The registry decides the rest;
/// this only catches values that cannot possibly be one.
func isImageReference(_ text: String) -> Bool {
    !text.isEmpty && !text.contains(where: \.isWhitespace)
}
