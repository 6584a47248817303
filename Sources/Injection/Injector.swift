import Document
import Kubernetes

/// What happened to one workload in a document.
public struct WorkloadReport: Sendable, Equatable {
    public var kind: String
    /// The name, or `generateName*`, or empty.
    public var name: String
    /// The namespace used for decisions (the caller's, else the object's).
    public var namespace: String?
    public var reason: InjectionReason
    /// The mode the proxy is (or already was) injected in.
    public var mode: SidecarMode?
    public var warnings: [String]
    /// Each check performed and its outcome, in order, for `--explain`.
    public var explanation: [String]
    /// JSON Pointer tokens of the pod template (for a non-workload, of the object) from the root
    /// of the document given.
    public var templatePointer: [String]
}

/// The rewritten document and one entry per object visited (List items included).
public struct InjectionReport: Sendable, Equatable {
    public var object: JSON
    public var workloads: [WorkloadReport]

    /// True when the object differs from the input.
    /// Each report's reason is read where it is stored: `contains` copied every report out.
    public var changed: Bool {
        workloads.indices.contains { workloads[$0].reason == .injected || workloads[$0].reason == .uninjected }
    }
}

/// The one injector the CLI and the admission webhook both call. Pure: values in, values out.
public struct Injector: Sendable {
    public var config: InjectionConfig { shared.config }
    /// Whether reports carry their explanation, for `--explain`. Off, injecting a large stream
    /// skips formatting a dozen lines per workload that nobody reads.
    public var keepsExplanations = true
    private let shared: Shared

    /// What does not change after `init`, in one object: the webhook copies its injector for
    /// every review (see `ConfigWatcher`), which then retains one reference rather than each of
    /// the config's strings and lists.
    private final class Shared: Sendable {
        let config: InjectionConfig
        /// The config's proxy settings, which every plan a pod does not override shares.
        let proxySettings: ProxyPlan.Settings
        let artifactsCache = ProxyArtifactsCache()

        init(config: InjectionConfig) {
            self.config = config
            proxySettings = ProxyPlan.Settings(config.proxy)
        }
    }

    /// The JSON text of the containers and status record this injector last added, for writing
    /// patches that add them.
    var addedTexts: JSONWrittenTexts { shared.artifactsCache.lastTexts }

    public init(config: InjectionConfig = .defaults) {
        shared = Shared(config: config)
    }

    /// Sidecars of other meshes; injecting beside them would fight over the pod's traffic.
    /// Lists, searched by length first (`JSONObject.isSameKey`): hashing every container's name
    /// into a set cost more.
    static let foreignContainers = [
        "istio-proxy", "linkerd-proxy", "envoy", "envoy-sidecar", "consul-dataplane",
        "consul-connect-envoy-sidecar", "kuma-sidecar",
    ]
    static let foreignInitContainers = [
        "istio-init", "istio-validation", "linkerd-init", "linkerd-network-validator",
        "consul-connect-inject-init", "kuma-init",
    ]
    /// Bit `n` set when a name in either list is `n` bytes long (all are shorter than 64): most
    /// containers' names have a length none has, and are passed over without comparing them to each.
    static let foreignNameLengths: UInt64 = (foreignContainers + foreignInitContainers).reduce(0) { $0 | 1 << $1.utf8.count }
    /// The preStop `sleep` action is on by default from 1.30 (beta); older servers drop it and
    /// then reject the hook as empty.
    static let sleepActionSince = KubernetesVersion(major: 1, minor: 30)

    /// Injects every workload in `object` (a workload, a List, or anything else, which passes
    /// through). `namespace` is the request's namespace when known (it wins over the object's);
    /// `lifecycle` overrides the configured mode (a pod's `tandem.io/lifecycle` still wins);
    /// `kubeVersion` resolves `auto`.
    public func inject(
        object: JSON, namespace: String? = nil, lifecycle: LifecycleMode? = nil,
        kubeVersion: KubernetesVersion? = nil
    ) throws(InjectionError) -> InjectionReport {
        var document = object
        var reports: [WorkloadReport] = []
        let request = Request(namespace: namespace, lifecycle: lifecycle, kubeVersion: kubeVersion)
        try visit(&document, pointer: [], impliedKind: nil, reports: &reports) {
            (template: inout JSONObject, report: inout WorkloadReport) throws(InjectionError) in
            try injectTemplate(&template, request: request, report: &report)
        }
        return InjectionReport(object: document, workloads: reports)
    }

    /// Removes what `inject` added, as recorded in each template's `tandem.io/status`.
    public func uninject(object: JSON) throws(InjectionError) -> InjectionReport {
        var document = object
        var reports: [WorkloadReport] = []
        try visit(&document, pointer: [], impliedKind: nil, reports: &reports) {
            (template: inout JSONObject, report: inout WorkloadReport) throws(InjectionError) in
            guard let status = try Self.status(in: Self.metadataMember("annotations", of: template)) else {
                report.reason = .notInjected
                explain(&report, "no tandem.io/status annotation: nothing to remove")
                return
            }
            TemplateEditor.uninject(status, from: &template)
            report.reason = .uninjected
            report.mode = status.mode
            explain(&report, "removed the \(status.mode.rawValue) injection recorded in tandem.io/status")
        }
        return InjectionReport(object: document, workloads: reports)
    }

    /// Adds a step to the report's explanation; the line is made only when explanations are kept.
    private func explain(_ report: inout WorkloadReport, _ line: @autoclosure () -> String) {
        if keepsExplanations { report.explanation.append(line()) }
    }

    // MARK: Walking documents

    private struct Request {
        var namespace: String?
        var lifecycle: LifecycleMode?
        var kubeVersion: KubernetesVersion?
    }

    private typealias TemplateBody = (inout JSONObject, inout WorkloadReport) throws(InjectionError) -> Void

    /// Finds every pod template in `object` (recursing into List items) and runs `body` on it
    /// in place, with a report entry prefilled for the workload.
    private func visit(_ object: inout JSON, pointer: [String], impliedKind: String?,
                       reports: inout [WorkloadReport], _ body: TemplateBody) throws(InjectionError) {
        let header = ObjectHeader(object)
        let kindName = header.kind ?? impliedKind ?? ""
        func entry(templatePointer: [String], warnings: [String]) -> WorkloadReport {
            WorkloadReport(kind: kindName, name: header.displayName, namespace: header.namespace, reason: .notAWorkload,
                           mode: nil, warnings: warnings, explanation: [], templatePointer: templatePointer)
        }
        switch ResourceShape(object, kind: header.kind ?? impliedKind) {
        case .other:
            var report = entry(templatePointer: pointer, warnings: [])
            explain(&report, kindName.isEmpty ? "the document has no kind" : "\(kindName) has no pod template")
            reports.append(report)
        case .list(let itemKind):
            try ObjectPath.modify(at: ["items"], in: &object) { (items: inout JSON) throws(InjectionError) in
                guard case .array(var list) = items else { return }
                items = .null
                defer { items = .array(list) }
                for index in list.indices {
                    try visit(&list[index], pointer: pointer + ["items", String(index)], impliedKind: itemKind,
                              reports: &reports, body)
                }
            }
        case .workload(let kind):
            let tokens: [String]
            do {
                tokens = try kind.templateTokens(in: object)
            } catch {
                throw InjectionError(pointer: pointer + error.existingPath,
                                     message: "\(kindName) \"\(header.displayName)\": \(error.missingPath) \(error.problem)")
            }
            // A document's own pod (most often) has both empty: joining them still built an array.
            let templatePointer = pointer.isEmpty ? tokens : pointer + tokens
            // Stored first and completed in place: a report the body captured was copied into
            // the list and then destroyed.
            let position = reports.endIndex
            reports.append(entry(templatePointer: templatePointer,
                                 warnings: kind != .pod ? Self.misplacedSettings(in: object) : []))
            do {
                try ObjectPath.modify(at: tokens, in: &object) { (template: inout JSON) throws(InjectionError) in
                    try template.modifyObject { (template: inout JSONObject) throws(InjectionError) in
                        try body(&template, &reports[position])
                    }
                }
            } catch {
                throw error.nested(under: templatePointer)
            }
        }
    }

    // MARK: Injecting one template

    private func injectTemplate(_ template: inout JSONObject, request: Request,
                                report: inout WorkloadReport) throws(InjectionError) {
        let namespace = request.namespace ?? report.namespace
        report.namespace = namespace
        var base = template
        // Read once, for the previous injection's record here, the opt-out and the settings below.
        var annotationMap = Self.metadataMember("annotations", of: base)
        // Only whether there was one is kept: the record, nil or not, was copied for each test.
        let hadPrevious: Bool
        if let previous = try Self.status(in: annotationMap) {
            hadPrevious = true
            TemplateEditor.uninject(previous, from: &base)
            annotationMap = Self.metadataMember("annotations", of: base)
            explain(&report, "found a previous \(previous.mode.rawValue) injection; deciding from the template without it")
        } else {
            hadPrevious = false
        }
        func skip(_ reason: InjectionReason, _ line: @autoclosure () -> String) {
            report.reason = reason
            explain(&report, line())
            if hadPrevious {
                report.warnings.append("the template still carries a previous injection; run uninject to remove it")
            }
        }

        guard shared.config.injection.enabled else {
            return skip(.injectionDisabled, "injection is switched off (injection.enabled: false)")
        }
        explain(&report, "injection is enabled")

        if let namespace, shared.config.injection.excludedNamespaces.contains(namespace) {
            return skip(.namespaceExcluded, "namespace \"\(namespace)\" is excluded (injection.excludedNamespaces)")
        }
        explain(&report, namespace.map { "namespace \"\($0)\" is not excluded" } ?? "namespace unknown: no namespace exclusion applies")

        if annotationMap?.withMember(PodAnnotations.inject, { $0 == "disabled" }) == true {
            return skip(.optedOutAnnotation, "annotation tandem.io/inject is \"disabled\"")
        }
        switch base.withValue(forKey: "metadata", { $0.withMember("labels") { $0[PodAnnotations.inject] } }) {
        case nil:
            explain(&report, "no tandem.io/inject opt-out")
        case .string("disabled")?:
            return skip(.optedOutLabel, "label tandem.io/inject is \"disabled\"")
        case .string("enabled")?:
            explain(&report, "label tandem.io/inject is \"enabled\"")
        case let value?:
            throw InjectionError(pointer: ["metadata", "labels", PodAnnotations.inject],
                                 message: "label tandem.io/inject: \(describe(value)) must be enabled or disabled")
        }

        let spec = base["spec"]?.objectValue ?? JSONObject()
        if spec["hostNetwork"]?.boolValue == true {
            return skip(.hostNetwork, "hostNetwork is true: the proxy cannot own the node's network")
        }
        explain(&report, "hostNetwork is not set")

        let pod = PodSurvey(spec)
        if let foreign = Self.foreignSidecar(among: pod.names) {
            return skip(.foreignSidecar, "container \"\(foreign)\" belongs to another mesh's sidecar")
        }
        explain(&report, "no other mesh's sidecar found")
        try Self.checkNameConflicts(spec, pod)

        let annotations = try PodAnnotations(annotationMap?.objectValue, at: ["metadata", "annotations"])
        var plan = self.plan(annotations, appPorts: pod.tcpPorts, request: request, report: &report)
        annotations.override(&plan)
        // The config's own resources were checked when it was read; only overrides can clash.
        if annotations.overridesResources, let conflict = plan.proxy.resources.conflict {
            throw InjectionError(pointer: ["metadata", "annotations"], message: "annotations: \(conflict)")
        }
        warnAboutTiming(&plan, spec: spec, kubeVersion: request.kubeVersion, warnings: &report.warnings)

        var injected = base
        let artifacts = shared.artifactsCache.artifacts(for: plan)
        let editWarnings = try TemplateEditor.inject(plan, artifacts, entrypoint: annotations.entrypoint, into: &injected)
        // Usually the first: taken as they are rather than copied onto an empty list.
        if report.warnings.isEmpty { report.warnings = editWarnings } else { report.warnings += editWarnings }
        try Self.checkValidity(before: base, after: injected, pod: pod, artifacts: artifacts)
        report.mode = plan.mode

        if hadPrevious, Self.recordedStatus(in: injected) == Self.recordedStatus(in: template) {
            report.reason = .alreadyInjected
            explain(&report, "the existing injection matches the current settings: nothing to change")
        } else {
            report.reason = .injected
            explain(&report, !hadPrevious
                ? "injected \(TandemNames.proxyContainer) in \(plan.mode.rawValue) mode"
                : "replaced the previous injection with a \(plan.mode.rawValue) one")
            template = injected
        }
    }

    /// Member `key` of the template's metadata, looked up in place: the metadata copied out to
    /// read it was retained and released.
    private static func metadataMember(_ key: String, of template: JSONObject) -> JSON? {
        template.withValue(forKey: "metadata") { $0.withMember(key) { $0 } }
    }

    /// The template's `tandem.io/status` annotation as it stands.
    private static func recordedStatus(in template: JSONObject) -> JSON? {
        metadataMember("annotations", of: template)?[PodAnnotations.status]
    }

    /// The proxy settings before the pod's overrides (`PodAnnotations.override`), which are made
    /// in the caller's plan: made here, the plan or the settings were copied once more.
    private func plan(_ annotations: PodAnnotations, appPorts: [Int], request: Request,
                      report: inout WorkloadReport) -> ProxyPlan {
        let requested: LifecycleMode
        let source: String
        if let mode = annotations.lifecycle {
            (requested, source) = (mode, "annotation tandem.io/lifecycle")
        } else if let mode = request.lifecycle {
            (requested, source) = (mode, "the caller's override")
        } else {
            (requested, source) = (shared.config.injection.mode, "injection.mode")
        }
        let mode = requested.resolved(kubeVersion: request.kubeVersion)
        explain(&report, requested != .auto ? "lifecycle \(requested.rawValue) from \(source)"
            : "lifecycle auto from \(source): "
                + (request.kubeVersion.map { "Kubernetes \($0) → \(mode.rawValue)" } ?? "Kubernetes version unknown → \(mode.rawValue)"))

        return ProxyPlan(
            mode: mode, proxy: shared.proxySettings, binaryMountPath: shared.config.injection.binaryMountPath,
            inboundPorts: annotations.inboundPorts ?? appPorts,
            excludeInboundPorts: annotations.excludeInboundPorts ?? [],
            excludeOutboundPorts: annotations.excludeOutboundPorts ?? [])
    }

    /// Settings that this pod or server cannot honour, said out loud rather than failing the pod.
    private func warnAboutTiming(_ plan: inout ProxyPlan, spec: JSONObject, kubeVersion: KubernetesVersion?,
                                 warnings: inout [String]) {
        if plan.mode == .native, let kubeVersion, kubeVersion < LifecycleMode.nativeSince {
            warnings.append("native sidecars are off by default before Kubernetes 1.29 (server is \(kubeVersion)): "
                + "the apiserver may reject the pod or drop restartPolicy and leave it stuck in Init; use legacy mode")
        }
        let delay = plan.proxy.drainDelaySeconds
        if delay > 0, plan.mode == .native, let kubeVersion, kubeVersion < Self.sleepActionSince {
            warnings.append("drain delay of \(delay)s not applied: the preStop sleep action needs Kubernetes 1.30, server is \(kubeVersion)")
            plan.proxy.drainDelaySeconds = 0
        }
        let grace = spec["terminationGracePeriodSeconds"]?.intValue ?? 30
        let needed = plan.proxy.drainSeconds + plan.proxy.drainDelaySeconds
        if needed > grace {
            warnings.append("the proxy may take \(needed)s to drain but terminationGracePeriodSeconds is \(grace)s")
        }
    }

    // MARK: Checks

    /// Reads and decodes `tandem.io/status` from a template's annotations; nil when they have none.
    private static func status(in annotations: JSON?) throws(InjectionError) -> InjectionStatus? {
        guard let value = annotations?[PodAnnotations.status] else { return nil }
        guard let text = value.stringValue, let status = InjectionStatus(annotationValue: text) else {
            throw InjectionError(pointer: ["metadata", "annotations", PodAnnotations.status],
                                 message: "annotation tandem.io/status: not a status record this version of tandem wrote")
        }
        return status
    }

    /// `tandem.io/*` on a Deployment's own metadata does nothing (only the pod template's
    /// counts); users put it there often enough that silence would hide the mistake.
    private static func misplacedSettings(in workload: JSON) -> [String] {
        var warnings: [String] = []
        guard let metadata = workload["metadata"]?.objectValue else { return warnings }
        for map in ["annotations", "labels"] {
            guard let entries = metadata[map]?.objectValue else { continue }
            for (key, _) in entries.members where key.hasPrefix(PodAnnotations.prefix) {
                warnings.append("\(map.dropLast()) \(key) on the workload itself has no effect: put it on the pod template's metadata")
            }
        }
        return warnings
    }

    /// A container's name and where it stands, read once for the checks of names.
    struct ContainerName {
        let name: String
        let isInit: Bool
        let index: Int

        var list: String { isInit ? "initContainers" : "containers" }
    }

    /// What the checks and the plan read of a pod spec's lists, read in one pass over the
    /// containers: the checks of names, the default inbound ports and the proof that the
    /// injection is sound each looked up the same lists in the spec and the same members in
    /// every container before.
    struct PodSurvey {
        /// The spec's lists as they are, for the checks that care what else they may be.
        let containers: JSON?
        let initContainers: JSON?
        let volumes: JSON?
        /// The names of the init containers, then of the containers, in order; unnamed ones are left out.
        private(set) var names: [ContainerName] = []
        /// Whether every container of both lists is an object with a name.
        private(set) var allNamed = true
        /// The app containers' TCP container ports, in order, without repeats: what the proxy
        /// intercepts by default.
        private(set) var tcpPorts: [Int] = []
        /// The container ports not in `tcpPorts`: the init containers', and the app containers' of
        /// other protocols (repeats kept). Most pods have none.
        private(set) var otherPorts: [Int] = []

        init(_ spec: JSONObject) {
            containers = spec["containers"]
            initContainers = spec["initContainers"]
            volumes = spec["volumes"]
            let initList = initContainers?.arrayValue ?? []
            let appList = containers?.arrayValue ?? []
            names.reserveCapacity(initList.count + appList.count)
            collect(initList, isInit: true)
            collect(appList, isInit: false)
        }

        /// A function for both lists rather than a loop over a list of them, which is built anew each time.
        /// Containers, port lists and ports are looked at where they are stored: copied out of
        /// their lists and objects, each was retained and released (15 times for a small pod).
        private mutating func collect(_ list: [JSON], isInit: Bool) {
            for index in list.indices {
                guard case .object(let container) = list[index] else {
                    allNamed = false
                    continue
                }
                if let name = container.withValue(forKey: "name", { $0.stringValue }) {
                    names.append(ContainerName(name: name, isInit: isInit, index: index))
                } else {
                    allNamed = false
                }
                container.withValue(forKey: "ports") { (ports: JSON) -> Void? in
                    guard case .array(let ports) = ports else { return nil }
                    for index in ports.indices {
                        collect(port: ports[index], isInit: isInit)
                    }
                    return nil
                }
            }
        }

        /// Whether a volume is named `name`, compared as `JSONObject.isSameKey` compares; the
        /// volumes are looked at where they are stored, not copied out.
        func hasVolume(named name: String) -> Bool {
            guard case .array(let volumes)? = volumes else { return false }
            return volumes.indices.contains { index in
                volumes[index].withMember("name") { (value: JSON) -> Bool? in
                    guard case .string(let volumeName) = value else { return nil }
                    return JSONObject.isSameKey(volumeName, name)
                } ?? false
            }
        }

        private mutating func collect(port: JSON, isInit: Bool) {
            guard let number = port.withMember("containerPort", { $0.intValue }) else { return }
            // A missing protocol is TCP (the apiserver's default); one that is no string is taken as TCP too.
            let isTCP = port.withMember("protocol") { (name: JSON) -> Bool? in
                guard case .string(let name) = name else { return nil }
                return name == "TCP"
            } ?? true
            if !isInit, isTCP {
                guard !tcpPorts.contains(number) else { return }
                // Room for a typical pod at once, rather than growing one append at a time.
                if tcpPorts.isEmpty { tcpPorts.reserveCapacity(8) }
                tcpPorts.append(number)
            } else {
                otherPorts.append(number)
            }
        }
    }

    /// The first container named for another mesh's sidecar, then the first such init container,
    /// then the first init container named for another mesh's init step.
    /// One pass rather than one per kind of match: a container found wins at once, the init
    /// containers found wait for the end.
    static func foreignSidecar(among names: [ContainerName]) -> String? {
        var initSidecar: String?
        var initStep: String?
        let lengths = foreignNameLengths
        for entry in names {
            let length = entry.name.utf8.count
            guard length < 64, lengths & 1 << length != 0 else { continue }
            let isSidecar = foreignContainers.contains { JSONObject.isSameKey($0, entry.name) }
            if !entry.isInit {
                if isSidecar { return entry.name }
            } else if isSidecar {
                if initSidecar == nil { initSidecar = entry.name }
            } else if initStep == nil, foreignInitContainers.contains(where: { JSONObject.isSameKey($0, entry.name) }) {
                initStep = entry.name
            }
        }
        return initSidecar ?? initStep
    }

    /// The names tandem gives what it adds, by the list they go in.
    private static let reservedContainerNames = [TandemNames.proxyContainer, TandemNames.initContainer]
    private static let reservedNames: [(list: String, names: [String])] = [
        ("containers", reservedContainerNames),
        ("initContainers", reservedContainerNames),
        ("volumes", [TandemNames.binaryVolume]),
    ]

    /// Our names on things we did not add (no status records them) cannot be told from ours, and
    /// two containers of one name could not be told apart by uninject, which finds the ones it
    /// wrapped by name (the apiserver refuses such a pod anyway).
    /// Most pods use none of our names, so the names (`PodSurvey.names`) and volumes are first
    /// scanned for one, and only then each list searched name by name, in the order that decides
    /// which conflict is reported. Our names are compared length first (`JSONObject.isSameKey`; no other
    /// spelling of them is canonically equal): a failed `==` of two strings is the costly case.
    private static func checkNameConflicts(_ spec: JSONObject, _ pod: PodSurvey) throws(InjectionError) {
        var usesReservedName = false
        for (position, entry) in pod.names.enumerated() {
            if let first = pod.names[..<position].first(where: { $0.name == entry.name }) {
                throw InjectionError(pointer: ["spec", entry.list, String(entry.index), "name"],
                                     message: "spec.\(entry.list)[\(entry.index)] is named \(entry.name), as is spec.\(first.list)[\(first.index)]: "
                                         + "container names must be unique")
            }
            if reservedContainerNames.contains(where: { JSONObject.isSameKey($0, entry.name) }) { usesReservedName = true }
        }
        guard usesReservedName || pod.hasVolume(named: TandemNames.binaryVolume) else { return }
        for (key, names) in reservedNames {
            guard let items = spec[key]?.arrayValue else { continue }
            let itemNames = items.map { $0["name"]?.stringValue }
            for name in names {
                guard let index = itemNames.firstIndex(of: name) else { continue }
                throw InjectionError(pointer: ["spec", key, String(index), "name"],
                                     message: "spec.\(key)[\(index)] is named \(name), which tandem reserves, "
                                         + "but no tandem.io/status annotation records it")
            }
        }
    }

    /// Injection must never turn a valid pod into one the apiserver rejects.
    /// Most pods meet what is added nowhere, which is proven without checking the pod; else the
    /// injected one is checked, the added containers (vetted once for all pods) and those the
    /// injection left as they were only against the pod.
    /// `pod` is the survey of `before`'s spec.
    private static func checkValidity(before: JSONObject, after: JSONObject, pod: PodSurvey,
                                      artifacts: ProxyArtifacts) throws(InjectionError) {
        // Besides the additions, the editor changes only app commands (not checked) and adds
        // preStop sleeps (sound on any app container).
        if let additions = artifacts.additions, additions.areSound(in: pod) { return }
        // The pod as it was is checked only when the injected one has problems (rarely).
        let problems = PodValidation.problems(in: after["spec"] ?? .null, vetted: artifacts.vetted, unchangedSince: before["spec"])
        guard !problems.isEmpty else { return }
        let old = Set(PodValidation.problems(in: before["spec"] ?? .null))
        let new = problems.filter { !old.contains($0) }
        guard new.isEmpty else {
            throw InjectionError(pointer: ["spec"], message: "injecting would make an invalid pod: " + new.joined(separator: "; "))
        }
    }
}
