import Document

/// The `spec` of a `coordination.k8s.io/v1` Lease, with the fields and meaning client-go's
/// leader election gives them, so that Tandem and Go controllers read each other's leases.
public struct LeaseSpec: Sendable, Equatable {
    /// Who leads; empty or absent once released.
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int?
    public var acquireTime: MicroTime?
    public var renewTime: MicroTime?
    public var leaseTransitions: Int?

    public init(holderIdentity: String? = nil, leaseDurationSeconds: Int? = nil, acquireTime: MicroTime? = nil,
                renewTime: MicroTime? = nil, leaseTransitions: Int? = nil) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
    }

    /// Reads a Lease's `spec` leniently: a field that is missing or unreadable is nil.
    public init(_ spec: JSON) {
        holderIdentity = spec["holderIdentity"]?.stringValue
        leaseDurationSeconds = spec["leaseDurationSeconds"]?.intValue
        acquireTime = spec["acquireTime"]?.stringValue.flatMap { MicroTime(rfc3339: $0) }
        renewTime = spec["renewTime"]?.stringValue.flatMap { MicroTime(rfc3339: $0) }
        leaseTransitions = spec["leaseTransitions"]?.intValue
    }

    /// `spec` with these fields written over it; fields this type does not know are kept.
    public func applied(to spec: JSON?) -> JSON {
        var object = spec?.objectValue ?? JSONObject()
        object["holderIdentity"] = holderIdentity.map(JSON.string)
        object["leaseDurationSeconds"] = leaseDurationSeconds.map(JSON.integer)
        object["acquireTime"] = acquireTime.map { .string($0.rfc3339) }
        object["renewTime"] = renewTime.map { .string($0.rfc3339) }
        object["leaseTransitions"] = leaseTransitions.map(JSON.integer)
        return .object(object)
    }

    /// Held by someone: a holder is named and its last renewal is less than a lease old.
    public func isHeld(at now: MicroTime) -> Bool {
        guard let holder = holderIdentity, !holder.isEmpty, let renewTime, let leaseDurationSeconds else { return false }
        return now <= renewTime + .seconds(leaseDurationSeconds)
    }
}

/// Leader election over one Lease, as a pure state machine; the shell reads the Lease, feeds
/// what it saw here, makes the write this returns, and reports how the write went.
///
/// The rules are client-go's: a candidate takes the Lease when there is none, when its holder
/// released it (empty `holderIdentity`) or when the holder stopped renewing (`renewTime +
/// leaseDurationSeconds` has passed). Every write carries the resourceVersion that was read, so
/// two candidates cannot both win: the loser gets 409 Conflict and reads again. A leader that
/// cannot renew for `renewDeadline` (shorter than the lease) stops leading on its own, before
/// anyone else may take over; on shutdown it releases the Lease so a successor need not wait.
public struct LeaderElection: Sendable {
    public enum Action: Sendable, Equatable {
        /// There is no Lease: create it with this spec.
        case create(LeaseSpec)
        /// Replace the spec of the Lease that was read (with its resourceVersion).
        case update(LeaseSpec)
        case startedLeading
        case stoppedLeading
    }

    public let identity: String
    public let leaseDuration: Duration
    public let renewDeadline: Duration
    public private(set) var isLeader = false
    /// When the Lease was last written by us as holder.
    private var lastRenewal: MicroTime?
    /// The write in flight and when it was decided: it counts as a renewal once it succeeds.
    private var pendingWrite: MicroTime?

    public init(identity: String, leaseDuration: Duration = .seconds(15), renewDeadline: Duration = .seconds(10)) {
        self.identity = identity
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
    }

    private var leaseDurationSeconds: Int { max(1, Int(leaseDuration.components.seconds)) }

    /// The Lease as read (nil: there is none): the write to make, if any, and `.stoppedLeading`
    /// when someone else holds it now.
    public mutating func observed(_ lease: LeaseSpec?, now: MicroTime) -> [Action] {
        guard let lease else {
            pendingWrite = now
            return [.create(LeaseSpec(holderIdentity: identity, leaseDurationSeconds: leaseDurationSeconds,
                                      acquireTime: now, renewTime: now, leaseTransitions: 0))]
        }
        if lease.holderIdentity == identity {
            pendingWrite = now
            var renewed = lease
            renewed.leaseDurationSeconds = leaseDurationSeconds
            renewed.renewTime = now
            if renewed.acquireTime == nil { renewed.acquireTime = now }
            return [.update(renewed)]
        }
        if lease.isHeld(at: now) {
            pendingWrite = nil
            return stepDown()
        }
        pendingWrite = now
        return [.update(LeaseSpec(holderIdentity: identity, leaseDurationSeconds: leaseDurationSeconds, acquireTime: now,
                                  renewTime: now, leaseTransitions: (lease.leaseTransitions ?? 0) + 1))]
    }

    /// The write from `observed` went through.
    public mutating func written() -> [Action] {
        guard let time = pendingWrite else { return [] }
        pendingWrite = nil
        lastRenewal = time
        if isLeader { return [] }
        isLeader = true
        return [.startedLeading]
    }

    /// Reading or writing failed (a lost race for the Lease included). Leadership survives
    /// until `renewDeadline` has passed since the last renewal.
    public mutating func failed(now: MicroTime) -> [Action] {
        pendingWrite = nil
        guard isLeader, let lastRenewal, now > lastRenewal + renewDeadline else { return [] }
        return stepDown()
    }

    /// On shutdown, with the Lease as last read: the update that hands it over (if we hold it),
    /// as client-go writes it: no holder, a one-second lease, the transition count kept.
    /// Leadership ends here whether or not the update is made.
    public mutating func release(_ lease: LeaseSpec?, now: MicroTime) -> [Action] {
        var actions: [Action] = []
        if let lease, lease.holderIdentity == identity {
            actions.append(.update(LeaseSpec(holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now,
                                             leaseTransitions: lease.leaseTransitions)))
        }
        pendingWrite = nil
        return actions + stepDown()
    }

    private mutating func stepDown() -> [Action] {
        guard isLeader else { return [] }
        isLeader = false
        lastRenewal = nil
        return [.stoppedLeading]
    }
}
