import Document

/// The record kept in the `tandem.io/status` annotation: exactly what an injection added or
/// changed, so uninjection can remove that and nothing else, and re-injection can start from
/// the original template.
struct InjectionStatus: Sendable, Equatable {
    /// Bumped when the record's shape changes, so an old injector refuses a newer record.
    static let formatVersion = 1

    /// How a container or map we filled in existed before, so it can be restored exactly.
    enum Origin: String, Sendable {
        /// The key was absent: remove it again once it is empty.
        case absent
        /// The key held null: put null back once it is empty.
        case null
        /// The key held a list or map already: leave it.
        case existing
    }

    struct Created: Sendable, Equatable {
        /// Tokens from the template (`["spec", "initContainers"]`).
        var path: [String]
        var origin: Origin
    }

    struct Wrapped: Sendable, Equatable {
        var container: String
        /// The container's own command; nil when it had none and the wrapper came from the
        /// `tandem.io/entrypoint` annotation.
        var command: JSON?
    }

    struct Mount: Sendable, Equatable {
        var container: String
        var volume: String
        var list: Origin
    }

    /// An app container given a preStop `sleep` for the drain delay (native mode).
    struct HeldStop: Sendable, Equatable {
        var container: String
        /// How the container's `lifecycle` was before.
        var lifecycle: Origin
    }

    var mode: SidecarMode
    var image: String
    /// A hash of the containers added, as we wrote them. The apiserver fills in defaults
    /// (`terminationMessagePath`, probe timeouts) before a webhook sees a pod, so comparing the
    /// containers themselves would call every defaulted pod out of date.
    var fingerprint = ""
    var containers: [String] = []
    var initContainers: [String] = []
    var volumes: [String] = []
    var wrapped: [Wrapped] = []
    var volumeMounts: [Mount] = []
    var heldStops: [HeldStop] = []
    /// Annotations added besides the status itself.
    var annotations: [String] = []
    /// Keys created on the way, in creation order (undone in reverse).
    var created: [Created] = []

    /// Adds to `created`, with room for as many as an injection can create (metadata, its
    /// annotations, initContainers, volumes) made at the first: most pods have no initContainers
    /// nor annotations, and the list grew and moved for the second.
    mutating func recordCreated(_ path: [String], origin: Origin) {
        if created.isEmpty { created.reserveCapacity(4) }
        created.append(Created(path: path, origin: origin))
    }

    var json: JSON {
        var object = JSONObject()
        object["version"] = .integer(Self.formatVersion)
        object["mode"] = .string(mode.rawValue)
        object["image"] = .string(image)
        object["fingerprint"] = .string(fingerprint)
        object["containers"] = .array(containers.map(JSON.string))
        object["initContainers"] = .array(initContainers.map(JSON.string))
        object["volumes"] = .array(volumes.map(JSON.string))
        object["wrapped"] = .array(wrapped.map { entry in
            var object: JSONObject = ["container": .string(entry.container)]
            if let command = entry.command { object["command"] = command }
            return .object(object)
        })
        object["volumeMounts"] = .array(volumeMounts.map {
            ["container": .string($0.container), "volume": .string($0.volume), "list": .string($0.list.rawValue)]
        })
        // Only when there are some, so records without any read the same as before.
        if !heldStops.isEmpty {
            object["heldStops"] = .array(heldStops.map { ["container": .string($0.container), "lifecycle": .string($0.lifecycle.rawValue)] })
        }
        object["annotations"] = .array(annotations.map(JSON.string))
        object["created"] = .array(created.map {
            ["path": .string("/" + $0.path.joined(separator: "/")), "was": .string($0.origin.rawValue)]
        })
        return .object(object)
    }

    var annotationValue: String { JSONWriter.string(json) }

    /// Reads a record written by `annotationValue`; nil for anything else.
    init?(annotationValue text: String) {
        guard let json = try? JSONReader.parse(text),
              json["version"]?.numberText == String(Self.formatVersion),
              let mode = json["mode"]?.stringValue.flatMap(SidecarMode.init(rawValue:)),
              let image = json["image"]?.stringValue,
              let fingerprint = json["fingerprint"]?.stringValue,
              let containers = Self.strings(json["containers"]),
              let initContainers = Self.strings(json["initContainers"]),
              let volumes = Self.strings(json["volumes"]),
              let annotations = Self.strings(json["annotations"]),
              let wrapped = json["wrapped"]?.arrayValue,
              let mounts = json["volumeMounts"]?.arrayValue,
              let created = json["created"]?.arrayValue
        else { return nil }
        self.init(mode: mode, image: image)
        self.fingerprint = fingerprint
        self.containers = containers
        self.initContainers = initContainers
        self.volumes = volumes
        self.annotations = annotations
        for entry in wrapped {
            guard let container = entry["container"]?.stringValue else { return nil }
            self.wrapped.append(Wrapped(container: container, command: entry["command"]))
        }
        for entry in mounts {
            guard let container = entry["container"]?.stringValue, let volume = entry["volume"]?.stringValue,
                  let list = entry["list"]?.stringValue.flatMap(Origin.init(rawValue:))
            else { return nil }
            volumeMounts.append(Mount(container: container, volume: volume, list: list))
        }
        if let held = json["heldStops"] {
            guard let entries = held.arrayValue else { return nil }
            for entry in entries {
                guard let container = entry["container"]?.stringValue,
                      let lifecycle = entry["lifecycle"]?.stringValue.flatMap(Origin.init(rawValue:))
                else { return nil }
                heldStops.append(HeldStop(container: container, lifecycle: lifecycle))
            }
        }
        for entry in created {
            guard let path = entry["path"]?.stringValue, path.hasPrefix("/"),
                  let origin = entry["was"]?.stringValue.flatMap(Origin.init(rawValue:)), origin != .existing
            else { return nil }
            self.created.append(Created(path: path.dropFirst().split(separator: "/").map(String.init), origin: origin))
        }
    }

    init(mode: SidecarMode, image: String) {
        self.mode = mode
        self.image = image
    }

    /// FNV-1a (64 bit) of the compact JSON of `containers`, in hex: stable across runs and
    /// platforms, unlike Swift's seeded `Hasher`.
    static func fingerprint(of containers: [JSON]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in JSONWriter.write(.array(containers)) {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func strings(_ value: JSON?) -> [String]? {
        guard let array = value?.arrayValue else { return nil }
        let strings = array.compactMap(\.stringValue)
        return strings.count == array.count ? strings : nil
    }
}
