import Document

/// Checks a pod spec for the mistakes the apiserver rejects with 422 (or that would break the
/// pod at run time), so every injection — and every patch the webhook sends — can be proven to
/// yield a valid-looking pod. Messages name containers by name, so the problems of a pod before
/// and after injection can be compared.
public enum PodValidation {
    /// `providedVolumes` names volumes a controller adds when it makes the pod: a StatefulSet's
    /// `volumeClaimTemplates`, when checking its template. `vetted` are containers whose own
    /// fields `ownProblems` found sound where they stand (the injector's, the same buffer in every
    /// pod it makes): of those only what depends on the rest of the pod is checked again. So are
    /// the containers that stand where they stood in `earlier`, the same buffer, or named and one
    /// place later (an edit put a container in front of them): whatever problems of their own
    /// they have, `earlier` had too (an injection leaves most app containers untouched, and asks
    /// only for problems the pod did not have before). Of a container that
    /// was changed, the fields it kept from its earlier self of the same name are not checked on
    /// their own again either, for the same reason: legacy mode edits only the mounts and command.
    public static func problems(in podSpec: JSON, providedVolumes: Set<String> = [], vetted: [VettedContainer] = [],
                                unchangedSince earlier: JSON? = nil) -> [String] {
        guard let spec = podSpec.objectValue else { return ["the pod spec is \(podSpec.typeName), not an object"] }
        var problems: [String] = []
        // A pod has a handful of volumes, containers and ports: arrays searched in order cost
        // less here than hashing into sets, and this runs for every workload injected.
        let podVolumes = names(in: spec["volumes"], kind: "volume", problems: &problems)
        let volumes = providedVolumes.isEmpty ? podVolumes : podVolumes + providedVolumes
        // Room for a typical pod at once, rather than growing one append at a time.
        var containerNames: [String] = []
        containerNames.reserveCapacity(8)
        var portOwners: [(port: PortKey, owner: ContainerLabel)] = []
        portOwners.reserveCapacity(8)
        for (key, isInit) in containerLists {
            guard let value = spec[key], !value.isNull else {
                if !isInit { problems.append("spec.containers is missing") }
                continue
            }
            guard let containers = value.arrayValue else {
                problems.append("spec.\(key) is \(value.typeName), not an array")
                continue
            }
            if !isInit, containers.isEmpty { problems.append("spec.containers is empty") }
            let earlierContainers = earlier?[key]?.arrayValue ?? []
            for (index, container) in containers.enumerated() {
                guard let object = container.objectValue else {
                    problems.append("\(ContainerLabel(name: nil, list: key, index: index)) is \(container.typeName), not an object")
                    continue
                }
                let label = ContainerLabel(name: object["name"]?.stringValue, list: key, index: index)
                if let name = label.name, !name.isEmpty {
                    if containerNames.contains(name) { problems.append("container name \"\(name)\" is used twice") }
                    containerNames.append(name)
                } else {
                    problems.append("\(label) has no name")
                }
                let isUnchanged = index < earlierContainers.count
                    && earlierContainers[index].objectValue?.sharesStorage(with: object) == true
                if !isUnchanged, let known = vetted.first(where: { $0.isInit == isInit && $0.container.sharesStorage(with: object) }) {
                    known.checkAgainstPod(label: label, volumes: volumes, portOwners: &portOwners, problems: &problems)
                    continue
                }
                let earlier = isUnchanged ? nil : earlierSelf(named: label.name, near: index, in: earlierContainers)
                // Moved, not changed (an edit put a container in front of it): its own fields are
                // the earlier ones, so their comparison is skipped too.
                let isKept = isUnchanged || earlier?.sharesStorage(with: object) == true
                check(object, label: label, isInit: isInit, scope: isKept ? .pod : .all,
                      kept: isKept ? .none : KeptFields(object, since: earlier), volumes: volumes,
                      portOwners: &portOwners, problems: &problems)
            }
        }
        return problems
    }

    /// What an injection adds to every pod, read out once per plan: containers in front of their
    /// lists and, in legacy mode, a volume after the pod's own with a mount of it after each app
    /// container's own. Whether a pod with these added has no problem it did not have before is
    /// then proven from where they could meet it (container names, ports, the volume's name, mount
    /// paths) without checking the pod, as every other problem is the pod's own and reads the
    /// same after: messages name containers by name, not place.
    struct Additions: Sendable {
        private let names: [String]
        /// Port numbers, not numbers and protocols: a pod's port of another protocol is a reason to
        /// check it in full, not a clash.
        private let portNumbers: [Int]
        private let volume: String?
        private let mountPath: String

        /// Nil when the added containers are not all `vetted`, or could clash among themselves or
        /// with the volume: then no pod's check is spared. `volume` needs a `mountPath`.
        init?(_ vetted: [VettedContainer], of count: Int, volume: String?, mountPath: String) {
            guard vetted.count == count, volume.map({ !$0.isEmpty && !mountPath.isEmpty }) ?? true else { return nil }
            var names: [String] = []
            var ports: [PortKey] = []
            for container in vetted {
                guard let name = container.name, !name.isEmpty, !names.contains(name),
                      container.mountedVolumes.allSatisfy({ $0 == volume }),
                      !container.claimedPorts.contains(where: ports.contains)
                else { return nil }
                names.append(name)
                ports += container.claimedPorts
            }
            self.names = names
            portNumbers = ports.map(\.number)
            self.volume = volume
            self.mountPath = mountPath
        }

        /// Whether adding these to the pod spec `pod` surveys gives one with no problem it did
        /// not have before; false when unsure. Names and paths compare as the checks compare them,
        /// by canonical equivalence (not `JSONObject.isSameKey`): a Kelvin sign is a K to them. The
        /// caller vouches that its other edits are ones the checks do not read (an app's command)
        /// or sound anywhere (a preStop sleep on an app container).
        /// The names and ports are the survey's, which the injector read for its own checks:
        /// looking them up in every container again cost as much as the rest of the proof.
        /// Lists, items and members are looked at where they are stored: copied out, each was
        /// retained and released.
        func areSound(in pod: Injector.PodSurvey) -> Bool {
            if let volume {
                guard isList(pod.volumes, withNone: { Self.hasString(volume, at: "name", in: $0) }) else { return false }
            }
            guard isList(pod.initContainers, withNone: { _ in false }), case .array(let containers)? = pod.containers,
                  pod.allNamed
            else { return false }
            for entry in pod.names where names.contains(entry.name) { return false }
            for number in portNumbers where pod.tcpPorts.contains(number) || pod.otherPorts.contains(number) { return false }
            guard volume != nil else { return true }
            for index in containers.indices {
                let mountsPath = containers[index].withMember("volumeMounts") { (mounts: JSON) -> Bool? in
                    guard case .array(let mounts) = mounts else { return nil }
                    return mounts.indices.contains { Self.hasString(mountPath, at: "mountPath", in: mounts[$0]) }
                }
                if mountsPath == true { return false }
            }
            return true
        }

        /// Whether member `key` of `object` is the string `text`.
        private static func hasString(_ text: String, at key: String, in object: JSON) -> Bool {
            object.withMember(key) { (value: JSON) -> Bool? in
                guard case .string(let string) = value else { return nil }
                return string == text
            } ?? false
        }
    }

    /// Whether `value` is a list the injection may create (absent, null or an array) with no
    /// element that `matches`.
    private static func isList(_ value: JSON?, withNone matches: (JSON) -> Bool) -> Bool {
        switch value {
        case nil, .null?: return true
        case .array(let list)?: return !list.indices.contains { matches(list[$0]) }
        default: return false
        }
    }

    /// A container checked on its own, in the list it goes in (`initContainers` when `isInit`).
    /// What the checks against the pod need of it (the ports it claims, the volumes its mounts
    /// name) is read out once too, rather than looked up in the container in every pod.
    public struct VettedContainer: Sendable {
        public let container: JSONObject
        public let isInit: Bool
        fileprivate let name: String?
        /// The ports that can clash with the pod's, in order: none for a plain init container.
        fileprivate let claimedPorts: [PortKey]
        fileprivate let mountedVolumes: [String]

        /// Nil when the container has problems of its own: then it is checked in full, every time.
        public init?(_ container: JSONObject, isInit: Bool) {
            guard PodValidation.ownProblems(of: container, isInit: isInit).isEmpty else { return nil }
            self.container = container
            self.isInit = isInit
            name = container["name"]?.stringValue
            let canClash = !isInit || container["restartPolicy"]?.stringValue == "Always"
            claimedPorts = canClash ? (container["ports"]?.arrayValue ?? []).compactMap { PodValidation.portKey(of: $0) } : []
            mountedVolumes = (container["volumeMounts"]?.arrayValue ?? []).map { PodValidation.volumeName(of: $0) }
        }

        /// The checks of `check` in scope `.pod`, from what was read out.
        fileprivate func checkAgainstPod(label: ContainerLabel, volumes: [String],
                                         portOwners: inout [(port: PortKey, owner: ContainerLabel)], problems: inout [String]) {
            for key in claimedPorts {
                PodValidation.claim(key, by: label, portOwners: &portOwners, problems: &problems)
            }
            for name in mountedVolumes {
                PodValidation.checkReference(to: name, by: label, volumes: volumes, problems: &problems)
            }
        }
    }

    /// The problems of a container's own fields, wherever it stands: not name clashes, port
    /// clashes or references to the pod's volumes.
    static func ownProblems(of container: JSONObject, isInit: Bool) -> [String] {
        var problems: [String] = []
        var portOwners: [(port: PortKey, owner: ContainerLabel)] = []
        let label = ContainerLabel(name: container["name"]?.stringValue, list: isInit ? "initContainers" : "containers", index: 0)
        check(container, label: label, isInit: isInit, scope: .own, kept: .none, volumes: [], portOwners: &portOwners,
              problems: &problems)
        return problems
    }

    /// Which of a container's checks to make: those of its own fields, those against the rest
    /// of the pod (port clashes, volume references), or all.
    private enum Scope {
        case own, pod, all

        var own: Bool { self != .pod }
        var pod: Bool { self != .own }
    }

    /// How messages name a container: by its name, else by its place. Made into text only for a
    /// problem, as most pods have none.
    fileprivate struct ContainerLabel: CustomStringConvertible {
        let name: String?
        let list: String
        let index: Int

        var description: String { name.map { "container \"\($0)\"" } ?? "\(list)[\(index)]" }
    }

    /// A port as the kubelet tells ports apart: `8080/TCP`.
    fileprivate struct PortKey: Hashable, CustomStringConvertible {
        let number: Int
        let proto: String

        var description: String { "\(number)/\(proto)" }
    }

    private static let containerLists = [("initContainers", true), ("containers", false)]
    private static let probeKinds = ["readinessProbe", "livenessProbe", "startupProbe"]
    private static let probeActions = ["httpGet", "tcpSocket", "grpc"]
    private static let hookKinds = ["postStart", "preStop"]
    private static let hookActions = ["exec", "httpGet", "tcpSocket", "sleep"]

    /// The container as it was before an edit: the one of the same name at the same place, or one
    /// place earlier (legacy mode puts the proxy first). Nil when there is none, or the container
    /// is named by its place, which an edit may have moved.
    private static func earlierSelf(named name: String?, near index: Int, in earlier: [JSON]) -> JSONObject? {
        guard let name else { return nil }
        for candidate in stride(from: index, through: index - 1, by: -1) where earlier.indices.contains(candidate) {
            if let object = earlier[candidate].objectValue, object["name"]?.stringValue == name { return object }
        }
        return nil
    }

    /// The members of a changed container that are those of its earlier self: the same key at
    /// the same place (an edit leaves the members it keeps where they were) and the same value
    /// at a glance. Their own problems, if any, the earlier container had.
    private struct KeptFields {
        /// The members `check` asks about, each by its bit in `changed`.
        enum Field: Int {
            case image, restartPolicy, ports, lifecycle, readinessProbe, livenessProbe, startupProbe, volumeMounts, env

            /// The keys, by `rawValue`.
            static let keys = [
                "image", "restartPolicy", "ports", "lifecycle", "readinessProbe", "livenessProbe", "startupProbe",
                "volumeMounts", "env",
            ]
            /// The fields the checks of probes and hooks read.
            static let handlerInputs: [Field] = [.ports, .restartPolicy, .lifecycle, .readinessProbe, .livenessProbe, .startupProbe]
        }

        /// A bit set for each field that is not kept: all of them when unsure. Worked out once
        /// per container, as `check` asks about each field in turn (and about six for its
        /// probes and hooks), and searching the changed keys every time cost more than the
        /// checks it spared.
        private let changed: UInt16

        static let none = KeptFields(changed: .max)

        private init(changed: UInt16) {
            self.changed = changed
        }

        init(_ container: JSONObject, since earlier: JSONObject?) {
            guard let earlier else {
                changed = .max
                return
            }
            var changed: UInt16 = 0
            for key in container.keysChanged(since: earlier) {
                // Most changed keys are none of these: `isSameKey` (inlined) rules them out by length.
                for (bit, name) in Field.keys.enumerated() where JSONObject.isSameKey(name, key) {
                    changed |= 1 << bit
                }
            }
            self.changed = changed
        }

        /// Whether `field` is kept; false when unsure.
        func keeps(_ field: Field) -> Bool {
            changed & (1 << field.rawValue) == 0
        }
    }

    private static func check(_ container: JSONObject, label: ContainerLabel, isInit: Bool, scope: Scope, kept: KeptFields,
                              volumes: [String], portOwners: inout [(port: PortKey, owner: ContainerLabel)],
                              problems: inout [String]) {
        if scope.own, !kept.keeps(.image), (container["image"]?.stringValue ?? "").isEmpty {
            problems.append("\(label) has no image")
        }

        // Read only where it counts: an app container's matters only when its own fields are checked.
        let checksRestartPolicy = scope.own && !kept.keeps(.restartPolicy)
        let restartPolicy = isInit || checksRestartPolicy ? container["restartPolicy"] : nil
        let isSidecar = isInit && restartPolicy?.stringValue == "Always"
        if checksRestartPolicy, let restartPolicy, !restartPolicy.isNull {
            if !isInit {
                problems.append("\(label): restartPolicy is only allowed on init containers")
            } else if !isSidecar {
                problems.append("\(label): restartPolicy must be Always, not \(describe(restartPolicy))")
            }
        }

        let checksPorts = scope.own && !kept.keeps(.ports)
        // Probes and hooks also depend on the declared port names and on being a sidecar.
        let checksHandlers = scope.own && !KeptFields.Field.handlerInputs.allSatisfy(kept.keeps)
        var portNames: [String] = []
        for port in container["ports"]?.arrayValue ?? [] {
            guard let key = portKey(of: port) else {
                if checksPorts { problems.append("\(label): a port has no containerPort 1-65535") }
                continue
            }
            if checksPorts || checksHandlers, let name = port["name"]?.stringValue {
                if checksPorts, !isPortName(name) { problems.append("\(label): port name \"\(name)\" is not a valid port name") }
                if checksPorts, portNames.contains(name) { problems.append("\(label): port name \"\(name)\" is used twice") }
                portNames.append(name)
            }
            // Plain init containers run before the others, so their ports cannot clash.
            guard scope.pod, !isInit || isSidecar else { continue }
            claim(key, by: label, portOwners: &portOwners, problems: &problems)
        }

        if checksHandlers {
            checkHandlers(of: container, label: label, isInit: isInit, isSidecar: isSidecar, portNames: portNames, problems: &problems)
        }

        let checksMounts = scope.own && !kept.keeps(.volumeMounts)
        let mounts = container["volumeMounts"]?.arrayValue ?? []
        // The paths seen so far, kept on the stack: an array of them was a heap allocation (and
        // its freeing) for every container whose mounts an injection changes, which is each one
        // in legacy mode.
        withUnsafeTemporaryAllocation(of: String.self, capacity: checksMounts ? max(mounts.count, 1) : 1) { mountPaths in
            var pathCount = 0
            defer { _ = UnsafeMutableBufferPointer(rebasing: mountPaths[..<pathCount]).deinitialize() }
            for mount in mounts {
                let name = volumeName(of: mount)
                if scope.pod { checkReference(to: name, by: label, volumes: volumes, problems: &problems) }
                guard checksMounts else { continue }
                let path = mount["mountPath"]?.stringValue ?? ""
                if path.isEmpty {
                    problems.append("\(label): volumeMount \"\(name)\" has no mountPath")
                } else if mountPaths[..<pathCount].contains(path) {
                    problems.append("\(label): mountPath \(path) is used twice")
                } else {
                    mountPaths.initializeElement(at: pathCount, to: path)
                    pathCount += 1
                }
            }
        }
        guard scope.own, !kept.keeps(.env) else { return }
        for env in container["env"]?.arrayValue ?? [] where (env["name"]?.stringValue ?? "").isEmpty {
            problems.append("\(label): an env var has no name")
        }
    }

    /// The port as the kubelet tells it apart; nil when it has no containerPort 1-65535.
    fileprivate static func portKey(of port: JSON) -> PortKey? {
        guard let number = port["containerPort"]?.intValue, (1...65535).contains(number) else {
            return nil
        }
        return PortKey(number: number, proto: port["protocol"]?.stringValue ?? "TCP")
    }

    /// Records `label` as the owner of `key`, or the clash with the container that already is.
    fileprivate static func claim(_ key: PortKey, by label: ContainerLabel,
                              portOwners: inout [(port: PortKey, owner: ContainerLabel)], problems: inout [String]) {
        if let owner = portOwners.first(where: { $0.port == key })?.owner {
            problems.append("\(label): port \(key) is also declared by \(owner)")
        } else {
            portOwners.append((key, label))
        }
    }

    fileprivate static func volumeName(of mount: JSON) -> String {
        mount["name"]?.stringValue ?? ""
    }

    fileprivate static func checkReference(to volume: String, by label: ContainerLabel, volumes: [String],
                                       problems: inout [String]) {
        if !volumes.contains(volume) { problems.append("\(label): volumeMount \"\(volume)\" refers to no volume") }
    }

    /// Probes and lifecycle hooks: where they are allowed, and that each names one action.
    /// Each is looked up once, without collecting them in arrays: this runs for every container
    /// an injection changes.
    private static func checkHandlers(of container: JSONObject, label: ContainerLabel, isInit: Bool, isSidecar: Bool,
                                      portNames: [String], problems: inout [String]) {
        // Plain init containers may have neither: said once, before the problems of any probe.
        var mustRefuseHandlers = isInit && !isSidecar
        func refuseHandlers() {
            guard mustRefuseHandlers else { return }
            problems.append("\(label): probes and lifecycle hooks are only allowed on sidecar init containers")
            mustRefuseHandlers = false
        }
        for probe in probeKinds {
            guard let handler = container[probe], !handler.isNull else { continue }
            refuseHandlers()
            for action in probeActions {
                guard let port = handler[action]?["port"] else { continue }
                if let name = port.stringValue, !name.allSatisfy(\.isNumber) {
                    if !portNames.contains(name) { problems.append("\(label): \(probe) uses port \"\(name)\", which is not declared") }
                } else if !isPortNumber(port.numberText ?? port.stringValue) {
                    problems.append("\(label): \(probe) port \(describe(port)) is not 1-65535")
                }
            }
        }
        let lifecycle = container["lifecycle"]
        if let lifecycle, !lifecycle.isNull { refuseHandlers() }
        for hook in hookKinds {
            guard let handler = lifecycle?[hook], !handler.isNull else { continue }
            var actionCount = 0
            var action = ""
            for candidate in hookActions where handler[candidate] != nil {
                actionCount += 1
                action = candidate
            }
            if actionCount != 1 {
                problems.append("\(label): \(hook) must have exactly one action")
            } else if action == "exec" {
                let command = handler["exec"]?["command"]?.arrayValue ?? []
                if command.isEmpty || command.contains(where: { $0.stringValue == nil }) {
                    problems.append("\(label): \(hook) exec command must be a non-empty list of strings")
                }
            } else if action == "sleep" {
                if handler["sleep"]?["seconds"]?.intValue.map({ $0 >= 0 }) != true {
                    problems.append("\(label): \(hook) sleep seconds must be a whole number")
                }
            }
        }
    }

    private static func isPortNumber(_ text: String?) -> Bool {
        guard let text, let number = Int(text) else { return false }
        return (1...65535).contains(number)
    }

    private static func names(in value: JSON?, kind: String, problems: inout [String]) -> [String] {
        let elements = value?.arrayValue ?? []
        var names: [String] = []
        names.reserveCapacity(elements.count)
        for element in elements {
            guard let name = element["name"]?.stringValue, !name.isEmpty else {
                problems.append("a \(kind) has no name")
                continue
            }
            if names.contains(name) {
                problems.append("\(kind) name \"\(name)\" is used twice")
            } else {
                names.append(name)
            }
        }
        return names
    }

    /// IANA service name rules, which Kubernetes applies to port names: at most 15 lowercase
    /// letters, digits and inner single hyphens, with at least one letter.
    /// Over the contiguous UTF-8, as walking `utf8` (and finding its last byte) cost hundreds of
    /// instructions a name.
    static func isPortName(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            guard (1...15).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else {
                return false
            }
            var hasLetter = false
            var previous: UInt8 = 0
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): hasLetter = true
                case UInt8(ascii: "0")...UInt8(ascii: "9"): break
                case UInt8(ascii: "-") where previous != UInt8(ascii: "-"): break
                default: return false
                }
                previous = byte
            }
            return hasLetter
        }
    }
}
