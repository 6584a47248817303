import Document
import Glibc
import Kubernetes
import Synchronization
import Telemetry

/// Elects one leader among replicas through a `coordination.k8s.io/v1` Lease: the shell that
/// runs `LeaderElection` (see there for the rules) against a `KubeClient`.
///
/// Every `retryPeriod` it reads the Lease and, as candidate or leader, writes it with the
/// resourceVersion it read; a write that loses a race (409) is retried at once after reading
/// again. When the task running `run()` is cancelled, it releases the Lease if it holds it, so
/// that another replica takes over within a `retryPeriod` rather than a whole lease.
/// `onChange(true)` / `onChange(false)` are called from that task when leadership starts and
/// stops (including at the end of `run()`); `isLeader` can be read at any time.
public final class LeaderElector: Sendable {
    public let namespace: String
    public let name: String
    public let identity: String
    public let retryPeriod: Duration
    private let leaseDuration: Duration
    private let renewDeadline: Duration
    private let client: KubeClient
    private let logger: Logger?
    private let onChange: @Sendable (Bool) -> Void
    private let state = Mutex<(isLeader: Bool, holder: String?)>((false, nil))

    /// client-go's defaults: a 15 s lease, renewed every 2 s, given up after 10 s of failures.
    public init(client: KubeClient, namespace: String, name: String, identity: String, leaseDuration: Duration = .seconds(15),
                renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2), logger: Logger? = nil,
                onChange: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
        self.retryPeriod = retryPeriod
        self.logger = logger?.with(["lease": .string("\(namespace)/\(name)"), "identity": .string(identity)])
        self.onChange = onChange
    }

    public static func leasePath(namespace: String, name: String? = nil) -> String {
        "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases" + (name.map { "/\($0)" } ?? "")
    }

    public var isLeader: Bool { state.withLock { $0.isLeader } }
    /// Who held the Lease when it was last read or written (this replica when leading); nil
    /// when nobody did.
    public var leader: String? { state.withLock { $0.holder } }

    /// Campaigns and leads until the task is cancelled, then releases the Lease.
    public func run() async {
        var election = LeaderElection(identity: identity, leaseDuration: leaseDuration, renewDeadline: renewDeadline)
        var lease: JSON?
        var retriedAtOnce = false
        while !Task.isCancelled {
            let lostRace = await attempt(&election, lease: &lease)
            if lostRace && !retriedAtOnce {
                retriedAtOnce = true
                continue
            }
            retriedAtOnce = false
            do { try await Task.sleep(for: retryPeriod) } catch { break }
        }
        // The run was cancelled, and so would be requests made from it.
        let released = await Task { [election, lease] in await self.release(election, lease: lease) }.value
        perform(released)
    }

    /// One read and, when the rules say so, one write. True when the write lost a race.
    private func attempt(_ election: inout LeaderElection, lease: inout JSON?) async -> Bool {
        let path = Self.leasePath(namespace: namespace, name: name)
        do {
            let current: JSON?
            do {
                current = try await client.get(path)
            } catch let error where error.isNotFound {
                current = nil
            }
            lease = current
            for action in election.observed(current.map { LeaseSpec($0["spec"] ?? .null) }, now: MicroTime.now()) {
                switch action {
                case .create(let spec):
                    lease = try await client.create(Self.leasePath(namespace: namespace), Self.lease(namespace: namespace, name: name, spec: spec))
                    perform(election.written())
                case .update(let spec):
                    lease = try await client.update(path, Self.replacingSpec(of: current ?? .null, with: spec))
                    perform(election.written())
                case .startedLeading, .stoppedLeading:
                    perform([action])
                }
            }
            observe(lease)
            return false
        } catch {
            perform(election.failed(now: MicroTime.now()))
            if Task.isCancelled { return false }
            let lostRace = error.isConflict || error.isAlreadyExists
            if !lostRace { logger?.warn("cannot read or write the lease", ["error": .string(error.description)]) }
            return lostRace
        }
    }

    private func release(_ election: LeaderElection, lease: JSON?) async -> [LeaderElection.Action] {
        var election = election
        let actions = election.release(lease.map { LeaseSpec($0["spec"] ?? .null) }, now: MicroTime.now())
        for case .update(let spec) in actions {
            do {
                let released = try await client.update(Self.leasePath(namespace: namespace, name: name),
                                                       Self.replacingSpec(of: lease ?? .null, with: spec))
                observe(released)
                logger?.info("released the lease")
            } catch {
                // Someone else wrote it meanwhile: it is not ours to release any more.
                logger?.warn("cannot release the lease", ["error": .string(error.description)])
            }
        }
        return actions.filter { $0 == .stoppedLeading }
    }

    private func perform(_ actions: [LeaderElection.Action]) {
        for action in actions {
            let leading: Bool
            switch action {
            case .startedLeading: leading = true
            case .stoppedLeading: leading = false
            case .create, .update: continue
            }
            state.withLock { $0.isLeader = leading }
            if leading { logger?.info("started leading") } else { logger?.info("stopped leading") }
            onChange(leading)
        }
    }

    private func observe(_ lease: JSON?) {
        let spec = lease.map { LeaseSpec($0["spec"] ?? .null) }
        let holder = spec.flatMap { $0.isHeld(at: MicroTime.now()) ? $0.holderIdentity : nil }
        state.withLock { $0.holder = holder }
    }

    static func lease(namespace: String, name: String, spec: LeaseSpec) -> JSON {
        ["apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
         "metadata": ["name": .string(name), "namespace": .string(namespace)], "spec": spec.applied(to: nil)]
    }

    /// The Lease as read, with its resourceVersion (the write's precondition) and a new spec.
    static func replacingSpec(of lease: JSON, with spec: LeaseSpec) -> JSON {
        var object = lease.objectValue ?? JSONObject()
        object["spec"] = spec.applied(to: lease["spec"])
        return .object(object)
    }
}

extension MicroTime {
    /// The wall clock: Lease times are compared across machines, so a monotonic clock would not do.
    public static func now() -> MicroTime {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return MicroTime(seconds: Int64(time.tv_sec), microseconds: Int64(time.tv_nsec / 1000))
    }
}
