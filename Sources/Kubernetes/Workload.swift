import Document

/// The kinds that carry a pod template, and where that template lives in each.
public enum WorkloadKind: String, CaseIterable, Sendable {
    case pod = "Pod"
    case deployment = "Deployment"
    case statefulSet = "StatefulSet"
    case daemonSet = "DaemonSet"
    case replicaSet = "ReplicaSet"
    case replicationController = "ReplicationController"
    case job = "Job"
    case cronJob = "CronJob"

    /// Keys from the object to its pod template (an object with `metadata` and `spec`);
    /// empty for a Pod, which is its own template.
    public var templatePath: [String] {
        switch self {
        case .pod: return []
        case .deployment, .statefulSet, .daemonSet, .replicaSet, .replicationController, .job:
            return ["spec", "template"]
        case .cronJob: return ["spec", "jobTemplate", "spec", "template"]
        }
    }
}

/// What a document is, as far as sidecar injection cares.
public enum ResourceShape: Sendable, Equatable {
    case workload(WorkloadKind)
    /// `kind: List` or any `*List` kind with an `items` array. `itemKind` is the kind implied by
    /// a typed list (`DeploymentList` → `Deployment`), whose items may omit `kind`.
    case list(itemKind: String?)
    case other

    /// `kind` is the object's own (`ObjectHeader.kind`), else the one its list implies: read once
    /// by the caller, who names the object by it too.
    public init(_ object: JSON, kind: String?) {
        guard let kind else { self = .other; return }
        // Length first (`JSONObject.isSameKey`; no kind's name has another canonically equal
        // spelling): `WorkloadKind(rawValue:)` compared the text with each name in turn through
        // the general string path, about two hundred instructions for a Pod.
        if let workload = WorkloadKind.allCases.first(where: { JSONObject.isSameKey($0.rawValue, kind) }) {
            self = .workload(workload)
        } else if kind.hasSuffix("List"), object["items"]?.arrayValue != nil {
            let itemKind = kind == "List" ? nil : String(kind.dropLast(4))
            self = .list(itemKind: itemKind)
        } else {
            self = .other
        }
    }
}

/// A workload whose pod template is missing or malformed.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Tokens of the deepest part of the path that does exist (relative to the object),
    /// so a caller can point at a line in the source.
    public var existingPath: [String]
    /// The dotted path that is missing, relative to the object (`spec.template`).
    public var missingPath: String
    /// `is missing`, or `must be an object` / `must be an array`.
    public var problem: String
    /// `Deployment "web": spec.template is missing`.
    public var message: String
    public var description: String { message }
}

extension WorkloadKind {
    /// Tokens of the pod template inside `object`, after checking that the template exists and
    /// has `spec.containers` as an array. Thrown rather than returned as a `Result`, which the
    /// caller copied out to take the tokens.
    public func templateTokens(in object: JSON) throws(TemplateError) -> [String] {
        let path = templatePath
        let depth: Int
        let isMissing: Bool
        switch Self.check(object, depth: 0, path: path) {
        case .complete: return path
        case .missing(let at): (depth, isMissing) = (at, true)
        case .misshapen(let at): (depth, isMissing) = (at, false)
        }
        let wanted = path + ["spec", "containers"]
        let missing = wanted[...depth].joined(separator: ".")
        let problem = isMissing ? "is missing" : "must be \(depth == path.count + 1 ? "an array" : "an object")"
        throw TemplateError(
            existingPath: Array(wanted[..<depth]), missingPath: missing, problem: problem,
            message: "\(ObjectHeader(object).reference): \(missing) \(problem)")
    }

    /// How the template's path, then its `spec.containers`, holds up from `depth` down in `value`.
    private enum PathCheck {
        case complete
        case missing(depth: Int)
        /// There, but an object where an array belongs or the other way round, or neither.
        case misshapen(depth: Int)
    }

    /// Each level is looked at where it is stored: copied out to descend, each was retained and released.
    private static func check(_ value: JSON, depth: Int, path: [String]) -> PathCheck {
        // The template's path, then its `spec.containers`, without joining them into a new array.
        let key = depth < path.count ? path[depth] : depth == path.count ? "spec" : "containers"
        let isLast = depth == path.count + 1
        return value.withMember(key) { (next: JSON) -> PathCheck in
            switch next {
            case .array: return isLast ? .complete : .misshapen(depth: depth)
            case .object: return isLast ? .misshapen(depth: depth) : check(next, depth: depth + 1, path: path)
            default: return .misshapen(depth: depth)
            }
        } ?? .missing(depth: depth)
    }
}
