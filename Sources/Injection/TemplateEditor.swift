import Document
import Kubernetes
import Synchronization

/// Names of everything the injector adds to a pod.
public enum TandemNames {
    public static let proxyContainer = "tandem-proxy"
    public static let initContainer = "tandem-init"
    public static let binaryVolume = "tandem-bin"
    public static let healthPort = "tandem-health"
    public static let defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"
    /// Where the image keeps the binary; legacy hooks run it from there inside the proxy container.
    static let imageBinary = "/usr/local/bin/tandem"
}

/// Everything decided for one template: the proxy settings after per-pod overrides.
struct ProxyPlan: Sendable, Equatable {
    var mode: SidecarMode
    /// Held by reference: most plans take the config's settings unchanged, and then building,
    /// comparing (in `ProxyArtifactsCache`) and destroying a plan retain, compare and release one
    /// reference rather than each of the settings' strings.
    private var settings: Settings
    var binaryMountPath: String
    var inboundPorts: [Int]
    var excludeInboundPorts: [Int]
    var excludeOutboundPorts: [Int]

    init(mode: SidecarMode, proxy settings: Settings, binaryMountPath: String, inboundPorts: [Int],
         excludeInboundPorts: [Int], excludeOutboundPorts: [Int]) {
        self.mode = mode
        self.settings = settings
        self.binaryMountPath = binaryMountPath
        self.inboundPorts = inboundPorts
        self.excludeInboundPorts = excludeInboundPorts
        self.excludeOutboundPorts = excludeOutboundPorts
    }

    /// The proxy settings; a change makes the plan its own copy of them.
    var proxy: InjectionConfig.Proxy {
        get { settings.proxy }
        set { settings = Settings(newValue) }
    }

    /// Proxy settings that plans share. Equal when they are the same object without comparing them.
    final class Settings: Sendable, Equatable {
        let proxy: InjectionConfig.Proxy

        init(_ proxy: InjectionConfig.Proxy) {
            self.proxy = proxy
        }

        static func == (lhs: Settings, rhs: Settings) -> Bool {
            lhs === rhs || lhs.proxy == rhs.proxy
        }
    }

    var adminURL: String { "http://127.0.0.1:\(proxy.adminPort)" }
    var readyURL: String { adminURL + "/ready" }
}

/// The containers one plan adds and their fingerprint. A manifest's workloads mostly share one
/// plan, so these are built once per plan rather than once per workload; a class, so that each
/// workload takes them with one retain rather than one per field.
final class ProxyArtifacts: Sendable {
    /// The plan they were made for, which a cache compares in place.
    let plan: ProxyPlan
    let proxy: JSON
    let initContainer: JSON
    let fingerprint: String
    /// Workloads of one shape get the same status record too, and writing it out was most of
    /// the cost of recording an injection.
    let statusTexts: StatusTextMemo
    /// The added containers that are sound on their own where they go, so the check of each
    /// injected pod looks at them only where they meet the pod's own containers.
    let vetted: [PodValidation.VettedContainer]
    /// All that is added, for proving most injected pods sound without checking them.
    let additions: PodValidation.Additions?
    /// What legacy mode adds to each app container: the mount of the binary, and the wrapper's
    /// command around the pod-dependent `--quit-url` query and `--quit-on` policy, made once per
    /// plan instead of once per container (string concatenation was most of that edit's cost).
    let binaryMount: JSON
    /// The volume legacy mode adds, one value for all pods like the mount, so that patches copy
    /// the text of both.
    let binaryVolume: JSON = ["name": .string(TandemNames.binaryVolume), "emptyDir": [:]]
    let superviseHead: [JSON]
    let quitURL: String
    let superviseTail: [JSON]

    init(_ plan: ProxyPlan) {
        self.plan = plan
        proxy = TemplateEditor.proxyContainer(plan)
        initContainer = TemplateEditor.initContainer(plan)
        binaryMount = [
            "name": .string(TandemNames.binaryVolume), "mountPath": .string(plan.binaryMountPath), "readOnly": true,
        ]
        superviseHead = [.string(plan.binaryMountPath + "/tandem"), "supervise", "--ready-url", .string(plan.readyURL), "--quit-url"]
        quitURL = plan.adminURL + "/quitquitquit"
        // Nothing else can delay the app's SIGTERM in legacy mode: the supervisor holds it.
        let delay = plan.proxy.drainDelaySeconds
        superviseTail = (delay > 0 ? ["--drain-delay", .string(String(delay))] : []) + ["--"]
        let placed = plan.mode == .native ? [(proxy, true)] : [(proxy, false), (initContainer, true)]
        vetted = placed.compactMap { container, isInit in
            container.objectValue.flatMap { PodValidation.VettedContainer($0, isInit: isInit) }
        }
        additions = PodValidation.Additions(vetted, of: placed.count, volume: plan.mode == .legacy ? TandemNames.binaryVolume : nil,
                                            mountPath: plan.binaryMountPath)
        fingerprint = InjectionStatus.fingerprint(of: plan.mode == .native ? [proxy] : [proxy, initContainer])
        statusTexts = StatusTextMemo(added: [proxy, initContainer, binaryMount, binaryVolume].compactMap(\.objectValue))
    }

    /// Compared in place: read out of the artifacts, the plan was copied member by member.
    func isMade(for plan: ProxyPlan) -> Bool { self.plan == plan }
}

/// Remembers the text of the last status record written (a one-entry memo, safe across threads),
/// and the JSON text of it and of the objects a plan adds, for writing patches that add them.
final class StatusTextMemo: Sendable {
    /// The added objects' text, written (and encoded) once for the plan, not once per record.
    private let added: JSONWrittenTexts
    private let last = Mutex<Entry?>(nil)
    /// The added objects and the last record as JSON text, made when a patch first asks for them:
    /// `tandem inject` never does.
    private let written = Mutex<(entry: Entry, texts: JSONWrittenTexts)?>(nil)

    /// A class, so that a hit takes the entry with one retain instead of copying the record.
    private final class Entry: Sendable {
        let status: InjectionStatus
        let text: String

        init(status: InjectionStatus, text: String) {
            self.status = status
            self.text = text
        }

        /// Compared in place: read out of the entry, the record was copied member by member.
        func holds(_ status: InjectionStatus) -> Bool { self.status == status }
    }

    init(added: [JSONObject]) {
        self.added = JSONWrittenTexts(added)
    }

    func text(of status: InjectionStatus) -> String {
        if let cached = last.withLock({ $0 }), cached.holds(status) { return cached.text }
        let text = status.annotationValue
        let entry = Entry(status: status, text: text)
        last.withLock { $0 = entry }
        return text
    }

    /// The added objects and the last record as JSON text.
    var writtenTexts: JSONWrittenTexts {
        guard let entry = last.withLock({ $0 }) else { return added }
        return written.withLock { written in
            if let written, written.entry === entry { return written.texts }
            let texts = added.with(strings: [entry.text])
            written = (entry, texts)
            return texts
        }
    }
}

/// Remembers the artifacts of the last plan seen (a one-entry cache, safe across threads).
final class ProxyArtifactsCache: Sendable {
    private let last = Mutex<ProxyArtifacts?>(nil)

    /// The text of the containers and status record last added; a patch that adds other ones
    /// just does not use it.
    var lastTexts: JSONWrittenTexts {
        // Only the texts are copied out, not the whole artifacts.
        last.withLock { $0?.statusTexts.writtenTexts } ?? JSONWrittenTexts([])
    }

    /// Threads that miss at once (the pieces of a stream start together) all take the artifacts
    /// stored first, so that every pod shares one proxy container: the YAML writer finds the
    /// text of a container it has written by its buffer, and compares any other one in full.
    func artifacts(for plan: ProxyPlan) -> ProxyArtifacts {
        if let cached = last.withLock({ $0 }), cached.isMade(for: plan) { return cached }
        let made = ProxyArtifacts(plan)
        return last.withLock { last in
            if let stored = last, stored.isMade(for: plan) { return stored }
            last = made
            return made
        }
    }
}

/// The edits themselves, on a pod template (an object with `metadata` and `spec`). Errors carry
/// pointers relative to the template.
enum TemplateEditor {
    // MARK: Inject

    /// Adds the proxy as `plan` says and records what was added in `tandem.io/status`.
    /// The template must not carry a previous injection. Returns warnings.
    /// `entrypoint` is the image's ENTRYPOINT from `tandem.io/entrypoint`, for app containers that
    /// state no command of their own.
    static func inject(_ plan: ProxyPlan, _ artifacts: ProxyArtifacts, entrypoint: [String]?,
                       into template: inout JSONObject) throws(InjectionError) -> [String] {
        var status = InjectionStatus(mode: plan.mode, image: plan.proxy.image)
        var warnings: [String] = []

        let metadataOrigin = try origin(of: template["metadata"], expecting: .object, at: metadataPath)
        if metadataOrigin != .existing {
            template["metadata"] = .object(JSONObject())
            status.recordCreated(metadataPath, origin: metadataOrigin)
        }

        // The edits are functions on the values the closures hand in, rather than closures that
        // capture `status`: a local function passed as a closure boxed what it captured, with a
        // checked access for each use, and copied the status record out of its box to write it.
        var firstAppContainer: String?
        try template.modifyMember("spec") { (spec: inout JSON) throws(InjectionError) in
            try spec.modifyObject { (spec: inout JSONObject) throws(InjectionError) in
                firstAppContainer = try addProxy(plan, artifacts, entrypoint: entrypoint, to: &spec, status: &status,
                                                 warnings: &warnings)
            }
        }
        try template.modifyMember("metadata") { (metadata: inout JSON) throws(InjectionError) in
            try metadata.modifyObject { (metadata: inout JSONObject) throws(InjectionError) in
                try annotate(&metadata, defaultContainer: firstAppContainer, artifacts: artifacts, status: &status)
            }
        }
        return warnings
    }

    /// Adds the proxy (and in legacy mode its init container and volume) to the spec, and edits
    /// the app containers. Returns the first app container's name.
    private static func addProxy(_ plan: ProxyPlan, _ artifacts: ProxyArtifacts, entrypoint: [String]?,
                                 to spec: inout JSONObject, status: inout InjectionStatus,
                                 warnings: inout [String]) throws(InjectionError) -> String? {
        // The spec is the template's too, so the first edit copies it: with room for the
        // lists the injection may add, so that adding them does not copy it again.
        spec.reserveCapacity(spec.count + 2)
        // Read where the spec holds the list: a copy of it was retained and released.
        let (containerCount, firstAppContainer) = spec.withValue(forKey: "containers") {
            (containers: JSON) -> (Int, String?)? in
            guard case .array(let list) = containers else { return nil }
            return (list.count, list.isEmpty ? nil : list[0].withMember("name") { $0.stringValue })
        } ?? (0, nil)
        let proxy = artifacts.proxy
        status.fingerprint = artifacts.fingerprint
        switch plan.mode {
        case .native:
            try prepend(proxy, to: initContainersPath, of: &spec, status: &status)
            status.initContainers = proxyContainerNames
            if plan.proxy.drainDelaySeconds > 0 {
                try editAppContainers(of: &spec) { (container, index) throws(InjectionError) in
                    try holdStop(&container, index: index, seconds: plan.proxy.drainDelaySeconds,
                                 status: &status, warnings: &warnings)
                }
            }
        case .legacy:
            let restartPolicy = spec["restartPolicy"]?.stringValue
            status.volumeMounts.reserveCapacity(containerCount)
            // Every wrapped app tells the proxy the others' names, so it quits after the last: the
            // commands are wrapped once all the containers have been seen, rather than each one's
            // command looked up beforehand too.
            var pending: [PendingWrap] = []
            try editAppContainers(of: &spec) { (container, index) throws(InjectionError) in
                try prepareAppContainer(&container, index: index, of: containerCount, artifacts: artifacts,
                                        entrypoint: entrypoint, pending: &pending, status: &status, warnings: &warnings)
            } then: { list in
                if !pending.isEmpty {
                    let apps = pending.map(\.name)
                    let quitOn = quitPolicy(restartPolicy: restartPolicy)
                    status.wrapped.reserveCapacity(pending.count)
                    for wrap in pending {
                        list[wrap.index].modifyObject { container in
                            container["command"] = .array(wrapper(of: wrap, apps: apps, quitOn: quitOn, artifacts: artifacts))
                        }
                        status.wrapped.append(.init(container: wrap.name, command: wrap.command))
                    }
                }
                list.insert(proxy, at: 0)
            }
            status.containers = proxyContainerNames
            try prepend(artifacts.initContainer, to: initContainersPath, of: &spec, status: &status)
            status.initContainers = initContainerNames
            try append(artifacts.binaryVolume, to: volumesPath, of: &spec, status: &status)
            status.volumes = binaryVolumeNames
        }
        return firstAppContainer
    }

    /// Names `defaultContainer` as kubectl's default (unless the pod names one) and writes the
    /// status record, creating the annotations if need be.
    private static func annotate(_ metadata: inout JSONObject, defaultContainer: String?, artifacts: ProxyArtifacts,
                                 status: inout InjectionStatus) throws(InjectionError) {
        let position = metadata.index(forKey: "annotations")
        let annotationsOrigin = try origin(of: position.map { metadata.members[$0].value }, expecting: .object,
                                           at: annotationsPath)
        if annotationsOrigin != .existing {
            status.recordCreated(annotationsPath, origin: annotationsOrigin)
        }
        if let position, annotationsOrigin == .existing {
            metadata.modifyValue(at: position) { annotations in
                annotations.modifyObject { annotations in
                    addAnnotations(to: &annotations, defaultContainer: defaultContainer, artifacts: artifacts, status: &status)
                }
            }
        } else {
            var annotations = JSONObject()
            addAnnotations(to: &annotations, defaultContainer: defaultContainer, artifacts: artifacts, status: &status)
            if let position {
                metadata.modifyValue(at: position) { $0 = .object(annotations) }
            } else {
                metadata.appendUnchecked(key: "annotations", value: .object(annotations))
            }
        }
    }

    /// One edit of the map for both annotations, with room made for them at once.
    private static func addAnnotations(to annotations: inout JSONObject, defaultContainer: String?, artifacts: ProxyArtifacts,
                                       status: inout InjectionStatus) {
        annotations.reserveCapacity(annotations.count + 2)
        if let defaultContainer, annotations[TandemNames.defaultContainerAnnotation] == nil {
            annotations[TandemNames.defaultContainerAnnotation] = .string(defaultContainer)
            status.annotations = defaultContainerAnnotations
        }
        annotations[PodAnnotations.status] = .string(artifacts.statusTexts.text(of: status))
    }

    /// Runs `edit` on each app container (an object) in place, then `finish` on the list; nothing
    /// when `spec.containers` is not an array. Each value is moved out while it changes, so
    /// nothing is copied.
    private static func editAppContainers(
        of spec: inout JSONObject, _ edit: (inout JSONObject, Int) throws(InjectionError) -> Void,
        then finish: (inout [JSON]) -> Void = { _ in }
    ) throws(InjectionError) {
        try spec.modifyMember("containers") { (containers: inout JSON) throws(InjectionError) in
            guard case .array(var list) = containers else { return }
            containers = .null
            defer { containers = .array(list) }
            // The list is the template's too, so the first edit copies it: with room for the
            // proxy legacy mode puts in front, so that inserting it does not copy it again.
            list.reserveCapacity(list.count + 1)
            for index in list.indices {
                try list[index].modifyObject { (container: inout JSONObject) throws(InjectionError) in
                    try edit(&container, index)
                }
            }
            finish(&list)
        }
    }

    /// An app container whose command is wrapped once every container has been seen (the
    /// wrapper names all the wrapped apps), with what its wrapper is made of.
    private struct PendingWrap {
        let index: Int
        let name: String
        /// The container's own command, for the status record.
        let command: JSON?
        /// The command wrapped: the container's own, or the image's entrypoint.
        let words: [JSON]
    }

    /// Legacy mode: mount the binary in an app container (the `index`th of `count`) and note its
    /// command in `pending` to be wrapped, so the proxy learns when the app exits; a container
    /// without one gets a warning.
    private static func prepareAppContainer(
        _ container: inout JSONObject, index: Int, of count: Int, artifacts: ProxyArtifacts, entrypoint: [String]?,
        pending: inout [PendingWrap], status: inout InjectionStatus, warnings: inout [String]
    ) throws(InjectionError) {
        guard let name = container["name"]?.stringValue else {
            throw InjectionError(pointer: ["spec", "containers", String(index), "name"],
                                 message: "spec.containers[\(index)] has no name")
        }
        let mount = artifacts.binaryMount
        let listOrigin: InjectionStatus.Origin
        // Told and changed in place, rather than read out (copied) to be told first: a container
        // that throws here is dropped with the whole injection.
        if let position = container.index(forKey: "volumeMounts") {
            listOrigin = try container.modifyValue(at: position) { (mounts: inout JSON) throws(InjectionError) in
                let listOrigin = try origin(of: mounts, expecting: .array,
                                            at: ["spec", "containers", String(index), "volumeMounts"])
                guard listOrigin == .existing, case .array(var list) = mounts else {
                    mounts = [mount]
                    return listOrigin
                }
                mounts = .null
                list.append(mount)
                mounts = .array(list)
                return listOrigin
            }
        } else {
            listOrigin = .absent
            container.appendUnchecked(key: "volumeMounts", value: [mount])
        }
        status.volumeMounts.append(.init(container: name, volume: TandemNames.binaryVolume, list: listOrigin))

        let command = container["command"]
        guard let words = wrappedCommand(command, entrypoint: entrypoint) else {
            // Room for one for each container left (most state no command), made at the first
            // rather than grown one append at a time.
            if warnings.isEmpty { warnings.reserveCapacity(count - index) }
            warnings.append(containerWarning(name, """
                " has no command, so it cannot be wrapped: the proxy will not learn \
                when it exits (state its command, give the image's entrypoint in tandem.io/entrypoint, or use native mode)
                """))
            return
        }
        pending.append(PendingWrap(index: index, name: name, command: command, words: words))
    }

    /// The pod's restartPolicy says which app exits end the pod (and so the proxy): any exit
    /// for Never, success for OnFailure, only the kubelet's stop signal for Always.
    private static func quitPolicy(restartPolicy: String?) -> String {
        switch restartPolicy {
        case "Never": return "exit"
        case "OnFailure": return "success"
        default: return "stop"
        }
    }

    /// The command that runs `wrap`'s own under `tandem supervise`; `apps` are all the wrapped apps.
    private static func wrapper(of wrap: PendingWrap, apps: [String], quitOn: String, artifacts: ProxyArtifacts) -> [JSON] {
        var wrapper = artifacts.superviseHead
        wrapper.reserveCapacity(wrapper.count + 3 + artifacts.superviseTail.count + wrap.words.count)
        wrapper.append(.string(quitURL(artifacts.quitURL, app: wrap.name, apps: apps)))
        wrapper.append("--quit-on")
        wrapper.append(.string(quitOn))
        wrapper += artifacts.superviseTail
        wrapper += wrap.words
        return wrapper
    }

    /// `container "NAME` and then `rest`, put together in a buffer on the stack and copied into a
    /// string once: joining with `+` grew and copied it again, interpolation appended each part
    /// through String's general path (hundreds of instructions a part), and a string filled in
    /// place checked its bytes anew, which here are all from strings.
    private static func containerWarning(_ name: String, _ rest: StaticString) -> String {
        let head: StaticString = "container \""
        var name = name
        return name.withUTF8 { name in
            let count = head.utf8CodeUnitCount + name.count + rest.utf8CodeUnitCount
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { text in
                var end = text.baseAddress!
                func put(_ start: UnsafePointer<UInt8>?, _ count: Int) {
                    guard let start else { return }
                    end.initialize(from: start, count: count)
                    end += count
                }
                put(head.utf8Start, head.utf8CodeUnitCount)
                put(name.baseAddress, name.count)
                put(rest.utf8Start, rest.utf8CodeUnitCount)
                return String(copying: UTF8Span(unchecked: UnsafeBufferPointer(text).span))
            }
        }
    }

    /// The command a legacy app container runs, which `tandem supervise` wraps: the one the pod
    /// states (its `command`), else the image's ENTRYPOINT given by annotation; nil when neither is known.
    private static func wrappedCommand(_ command: JSON?, entrypoint: [String]?) -> [JSON]? {
        if let stated = command?.arrayValue, !stated.isEmpty { return stated }
        if let entrypoint, command == nil { return entrypoint.map(JSON.string) }
        return nil
    }

    /// With several wrapped apps, each one's quit names itself and all of them, so the proxy
    /// keeps serving the others until the last has exited. One app needs no names.
    private static func quitURL(_ base: String, app: String, apps: [String]) -> String {
        apps.count > 1 ? base + "?app=\(app)&apps=" + apps.joined(separator: ",") : base
    }

    /// Native mode: the kubelet sends an app container SIGTERM as soon as the pod is deleted (only
    /// the proxy's waits for the app), so a preStop `sleep` keeps the app serving for the drain
    /// delay while endpoint removal propagates. A container's own preStop is left alone.
    private static func holdStop(_ container: inout JSONObject, index: Int, seconds: Int,
                                 status: inout InjectionStatus, warnings: inout [String]) throws(InjectionError) {
        guard let name = container["name"]?.stringValue else {
            throw InjectionError(pointer: ["spec", "containers", String(index), "name"],
                                 message: "spec.containers[\(index)] has no name")
        }
        let lifecycleOrigin = try origin(of: container["lifecycle"], expecting: .object,
                                         at: ["spec", "containers", String(index), "lifecycle"])
        let hook: JSON = ["sleep": ["seconds": .integer(seconds)]]
        if lifecycleOrigin == .existing {
            guard container["lifecycle"]?["preStop"] == nil else {
                warnings.append("container \"\(name)\" has a preStop hook of its own, so the drain delay does not hold its SIGTERM")
                return
            }
            container.modifyMember("lifecycle") { lifecycle in lifecycle.modifyObject { $0["preStop"] = hook } }
        } else {
            container["lifecycle"] = ["preStop": hook]
        }
        status.heldStops.append(.init(container: name, lifecycle: lifecycleOrigin))
    }

    // MARK: Containers we add

    static func proxyContainer(_ plan: ProxyPlan) -> JSON {
        let proxy = plan.proxy
        var env: [JSON] = [
            fieldEnv("POD_NAME", "metadata.name"),
            fieldEnv("POD_NAMESPACE", "metadata.namespace"),
            fieldEnv("POD_IP", "status.podIP"),
        ]
        let portLists = [
            ("TANDEM_INBOUND_PORTS", plan.inboundPorts),
            ("TANDEM_EXCLUDE_INBOUND_PORTS", plan.excludeInboundPorts),
            ("TANDEM_EXCLUDE_OUTBOUND_PORTS", plan.excludeOutboundPorts),
        ]
        for (name, ports) in portLists where !ports.isEmpty {
            env.append(valueEnv(name, ports.map(String.init).joined(separator: ",")))
        }
        env += [
            valueEnv("TANDEM_ADMIN_PORT", String(proxy.adminPort)),
            valueEnv("TANDEM_HEALTH_PORT", String(proxy.healthPort)),
            valueEnv("TANDEM_LOG_LEVEL", proxy.logLevel.rawValue),
            valueEnv("TANDEM_DRAIN_SECONDS", String(proxy.drainSeconds)),
            valueEnv("TANDEM_LIFECYCLE", plan.mode.rawValue),
        ]
        // Legacy: SIGTERM comes with the app's, and the delay lengthens the proxy's deadline. Native:
        // the preStop sleep below has run before SIGTERM, so the proxy must not wait again.
        if plan.mode == .legacy && proxy.drainDelaySeconds > 0 {
            env.append(valueEnv("TANDEM_DRAIN_DELAY_SECONDS", String(proxy.drainDelaySeconds)))
        }
        let ready: JSON = ["path": "/ready", "port": .string(TandemNames.healthPort)]
        var container = JSONObject()
        container["name"] = .string(TandemNames.proxyContainer)
        container["image"] = .string(proxy.image)
        container["imagePullPolicy"] = .string(proxy.imagePullPolicy)
        container["args"] = ["proxy"]
        container["env"] = .array(env)
        container["ports"] = [[
            "name": .string(TandemNames.healthPort), "containerPort": .integer(proxy.healthPort), "protocol": "TCP",
        ]]
        container["readinessProbe"] = ["httpGet": ready, "periodSeconds": 5]
        // The kubelet starts the app only once this passes (native) or postStart returns (legacy).
        container["startupProbe"] = [
            "httpGet": ready, "periodSeconds": 1, "failureThreshold": .integer(proxy.startTimeoutSeconds),
        ]
        container["resources"] = proxy.resources.json
        container["securityContext"] = securityContext(uid: proxy.uid)
        switch plan.mode {
        case .native:
            if proxy.drainDelaySeconds > 0 {
                container["lifecycle"] = ["preStop": ["sleep": ["seconds": .integer(proxy.drainDelaySeconds)]]]
            }
            container["restartPolicy"] = "Always"
        case .legacy:
            // No preStop: SIGTERM reaches the proxy with the app's, and the proxy serves until the
            // app's `tandem supervise` posts /quitquitquit (or its drain deadline).
            container["lifecycle"] = [
                "postStart": ["exec": ["command": strings([
                    TandemNames.imageBinary, "await", "--ready-url", plan.readyURL,
                    "--timeout", String(proxy.startTimeoutSeconds),
                ])]],
            ]
        }
        return .object(container)
    }

    /// Copies the binary into the shared volume before any app container starts (legacy mode).
    static func initContainer(_ plan: ProxyPlan) -> JSON {
        [
            "name": .string(TandemNames.initContainer),
            "image": .string(plan.proxy.image),
            "imagePullPolicy": .string(plan.proxy.imagePullPolicy),
            "args": strings(["install", plan.binaryMountPath]),
            "volumeMounts": [["name": .string(TandemNames.binaryVolume), "mountPath": .string(plan.binaryMountPath)]],
            "resources": [
                "requests": ["cpu": "10m", "memory": "16Mi"],
                "limits": ["cpu": "100m", "memory": "32Mi"],
            ],
            "securityContext": securityContext(uid: plan.proxy.uid),
        ]
    }

    private static func securityContext(uid: Int) -> JSON {
        [
            "runAsNonRoot": true, "runAsUser": .integer(uid), "runAsGroup": .integer(uid),
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
            "capabilities": ["drop": ["ALL"]], "seccompProfile": ["type": "RuntimeDefault"],
        ]
    }

    private static func fieldEnv(_ name: String, _ fieldPath: String) -> JSON {
        ["name": .string(name), "valueFrom": ["fieldRef": ["fieldPath": .string(fieldPath)]]]
    }

    private static func valueEnv(_ name: String, _ value: String) -> JSON {
        ["name": .string(name), "value": .string(value)]
    }

    private static func strings(_ words: [String]) -> JSON { .array(words.map(JSON.string)) }

    // MARK: Lists we add to

    enum Shape { case object, array }

    /// How a key we are about to fill holds up: absent, null, or already a value of the right shape.
    /// The pointer is made only for an error, as nearly every pod has none.
    private static func origin(of value: JSON?, expecting shape: Shape,
                               at pointer: @autoclosure () -> [String]) throws(InjectionError) -> InjectionStatus.Origin {
        switch (value, shape) {
        case (nil, _): return .absent
        case (.null?, _): return .null
        case (.object?, .object), (.array?, .array): return .existing
        case (let value?, _):
            let pointer = pointer()
            throw InjectionError(pointer: pointer, message: "\(pointer.joined(separator: ".")) must be "
                + "\(shape == .object ? "an object" : "an array"), not \(value.typeName)")
        }
    }

    /// Paths of what the injection may create, made once rather than for every record and error.
    private static let metadataPath = ["metadata"]
    private static let annotationsPath = ["metadata", "annotations"]
    private static let initContainersPath = ["spec", "initContainers"]
    private static let volumesPath = ["spec", "volumes"]
    /// The status record's one-name lists, shared by every record rather than made for each.
    private static let proxyContainerNames = [TandemNames.proxyContainer]
    private static let initContainerNames = [TandemNames.initContainer]
    private static let binaryVolumeNames = [TandemNames.binaryVolume]
    private static let defaultContainerAnnotations = [TandemNames.defaultContainerAnnotation]

    private static func prepend(_ item: JSON, to path: [String], of spec: inout JSONObject, status: inout InjectionStatus) throws(InjectionError) {
        try add(item, to: path, of: &spec, status: &status) { $0.insert(item, at: 0) }
    }

    private static func append(_ item: JSON, to path: [String], of spec: inout JSONObject, status: inout InjectionStatus) throws(InjectionError) {
        try add(item, to: path, of: &spec, status: &status) { $0.append(item) }
    }

    /// Adds `item` to the spec's list at `path` (`["spec", key]`), found with one lookup.
    private static func add(_ item: JSON, to path: [String], of spec: inout JSONObject, status: inout InjectionStatus,
                            _ insert: (inout [JSON]) -> Void) throws(InjectionError) {
        let key = path[1]
        guard let position = spec.index(forKey: key) else {
            spec.appendUnchecked(key: key, value: [item])
            status.recordCreated(path, origin: .absent)
            return
        }
        // Told and changed in place, as an app container's mounts are (`prepareAppContainer`).
        let listOrigin = try spec.modifyValue(at: position) { (value: inout JSON) throws(InjectionError) in
            let listOrigin = try origin(of: value, expecting: .array, at: path)
            guard listOrigin == .existing, case .array(var list) = value else {
                value = [item]
                return listOrigin
            }
            value = .null
            insert(&list)
            value = .array(list)
            return listOrigin
        }
        if listOrigin != .existing { status.recordCreated(path, origin: listOrigin) }
    }

    // MARK: Uninject

    /// Removes exactly what `status` says was added, restoring commands and removing keys that
    /// were created on the way.
    static func uninject(_ status: InjectionStatus, from template: inout JSONObject) {
        template.modifyMember("spec") { spec in
            spec.modifyObject { spec in
                remove(named: status.containers, from: "containers", of: &spec)
                remove(named: status.initContainers, from: "initContainers", of: &spec)
                remove(named: status.volumes, from: "volumes", of: &spec)
                guard !status.wrapped.isEmpty || !status.volumeMounts.isEmpty || !status.heldStops.isEmpty else { return }
                spec.modifyMember("containers") { containers in
                    guard case .array(var list) = containers else { return }
                    containers = .null
                    defer { containers = .array(list) }
                    for index in list.indices {
                        list[index].modifyObject { container in restore(&container, status) }
                    }
                }
            }
        }
        template.modifyMember("metadata") { metadata in
            metadata.modifyObject { metadata in
                for key in status.annotations + [PodAnnotations.status] {
                    Metadata.setAnnotation(key, to: nil, in: &metadata)
                }
            }
        }
        var root = JSON.object(template)
        template = JSONObject()
        for created in status.created.reversed() {
            guard let key = created.path.last else { continue }
            ObjectPath.modify(at: created.path.dropLast(), in: &root) { parent in
                parent.modifyObject { parent in
                    guard let value = parent[key], isEmpty(value) else { return }
                    // JSON is nil-literal expressible, so spell out "remove the key".
                    parent[key] = created.origin == .null ? JSON.null : Optional<JSON>.none
                }
            }
        }
        template = root.objectValue ?? JSONObject()
    }

    private static func restore(_ container: inout JSONObject, _ status: InjectionStatus) {
        guard let name = container["name"]?.stringValue else { return }
        for held in status.heldStops where held.container == name {
            container.modifyMember("lifecycle") { lifecycle in
                lifecycle.modifyObject { $0["preStop"] = Optional<JSON>.none }
            }
            if held.lifecycle != .existing, container["lifecycle"]?.objectValue?.isEmpty == true {
                container["lifecycle"] = held.lifecycle == .null ? JSON.null : Optional<JSON>.none
            }
        }
        for wrapped in status.wrapped where wrapped.container == name {
            container["command"] = wrapped.command
        }
        for mount in status.volumeMounts where mount.container == name {
            container.modifyMember("volumeMounts") { mounts in
                guard case .array(var list) = mounts else { return }
                mounts = .null
                list.removeAll { $0["name"]?.stringValue == mount.volume }
                mounts = list.isEmpty && mount.list != .existing ? .null : .array(list)
            }
            if mount.list == .absent, container["volumeMounts"]?.isNull == true {
                container["volumeMounts"] = nil
            }
        }
    }

    private static func remove(named names: [String], from key: String, of spec: inout JSONObject) {
        guard !names.isEmpty else { return }
        spec.modifyMember(key) { value in
            guard case .array(var list) = value else { return }
            value = .null
            list.removeAll { element in element["name"]?.stringValue.map(names.contains) ?? false }
            value = .array(list)
        }
    }

    private static func isEmpty(_ value: JSON) -> Bool {
        switch value {
        case .array(let array): return array.isEmpty
        case .object(let object): return object.isEmpty
        default: return false
        }
    }
}
