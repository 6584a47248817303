import Document
import Kube
import Kubernetes
import Synchronization
import Telemetry

/// How a bridge follows Kubernetes and, as the writer, mirrors legacy hosts into it.
public struct KubernetesSyncOptions: Sendable {
    /// Namespaces to watch and write to; empty for all. Services of the first (or `default`)
    /// are named without a suffix.
    public var namespaces: [String]
    /// Where the Lease that picks the one writer among replicas lives.
    public var leaseNamespace: String
    public var leaseName: String
    /// This replica's `host:port`: its name in the Lease and where standbys send writes.
    public var identity: String
    /// Mirror legacy hosts into Kubernetes as Services and EndpointSlices.
    public var writeBack: Bool
    /// How often the writer compares everything even when nothing seemed to change.
    public var resyncInterval: Duration
    /// How often the loop looks for work: changes made within it are written together.
    public var pollInterval: Duration
    public var leaseDuration: Duration
    public var renewDeadline: Duration
    public var retryPeriod: Duration
    public var informer: Informer.Options

    public init(namespaces: [String] = [], leaseNamespace: String = "default", leaseName: String = "tandem-bridge",
                identity: String, writeBack: Bool = true, resyncInterval: Duration = .seconds(60),
                pollInterval: Duration = .milliseconds(100), leaseDuration: Duration = .seconds(15),
                renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2),
                informer: Informer.Options = Informer.Options()) {
        self.namespaces = namespaces
        self.leaseNamespace = leaseNamespace
        self.leaseName = leaseName
        self.identity = identity
        self.writeBack = writeBack
        self.resyncInterval = resyncInterval
        self.pollInterval = pollInterval
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
        self.retryPeriod = retryPeriod
        self.informer = informer
    }

    /// The namespace whose Services are named without a suffix.
    public var homeNamespace: String { namespaces.first ?? "default" }
}

/// The bridge's Kubernetes shell: informers on EndpointSlices and Services feed the registry;
/// a Lease picks one writer among replicas; the writer turns `WriteBack` plans into API calls,
/// while the others follow the legacy hosts it wrote. Kubernetes is the only store: a bridge
/// that starts (or takes over) begins from what the writer last mirrored, and each of those
/// hosts has one TTL to heartbeat again.
public final class KubernetesSync: Sendable {
    private let client: KubeClient
    private let server: BridgeServer
    private let options: KubernetesSyncOptions
    private let logger: Logger
    private let writeBack: WriteBack
    private let sliceInformers: [Informer]
    private let serviceInformers: [Informer]
    private let elector: LeaderElector
    /// Set by informer events, read by the loop: something the writer or a standby must look at.
    private let dirty: Dirty
    private let feed: SliceFeed
    private let writes: Counter
    private let leading: Gauge
    private let skippedGauge: Gauge

    public init(client: KubeClient, server: BridgeServer, options: KubernetesSyncOptions, logger: Logger,
                metrics: MetricsRegistry) {
        self.client = client
        self.server = server
        self.options = options
        self.logger = logger
        writeBack = WriteBack(homeNamespace: options.homeNamespace,
                              namespaces: options.namespaces.isEmpty ? nil : Set(options.namespaces))
        writes = metrics.counter("tandem_bridge_kubernetes_writes_total",
                                 help: "Writes of mirrored legacy hosts to the API server, by verb and result.",
                                 labels: ["verb", "result"])
        leading = metrics.gauge("tandem_bridge_writer", help: "1 when this replica holds the Lease and writes to Kubernetes.")
        skippedGauge = metrics.gauge("tandem_bridge_writeback_skipped",
                                     help: "Legacy services that cannot be mirrored into Kubernetes (see the logs for why).")
        let scopes: [String?] = options.namespaces.isEmpty ? [nil] : options.namespaces
        let dirty = Dirty()
        self.dirty = dirty
        let feed = SliceFeed(server: server, dirty: dirty)
        self.feed = feed
        let sliceInformers = scopes.map { namespace in
            let path = namespace.map { "/apis/discovery.k8s.io/v1/namespaces/\($0)/endpointslices" } ?? "/apis/discovery.k8s.io/v1/endpointslices"
            return Informer(client: client, path: path, options: options.informer, logger: logger) { feed.handle($0) }
        }
        self.sliceInformers = sliceInformers
        feed.informers.withLock { $0 = sliceInformers }
        serviceInformers = scopes.map { namespace in
            let path = namespace.map { "/api/v1/namespaces/\($0)/services" } ?? "/api/v1/services"
            return Informer(client: client, path: path, options: options.informer, logger: logger) { _ in
                dirty.mark(plan: true)
            }
        }
        elector = LeaderElector(client: client, namespace: options.leaseNamespace, name: options.leaseName,
                                identity: options.identity, leaseDuration: options.leaseDuration,
                                renewDeadline: options.renewDeadline, retryPeriod: options.retryPeriod, logger: logger)
        server.setReady(false)
        server.setWriter(.unknown)
    }

    /// Watches, elects and writes until the task is cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { tasks in
            for informer in sliceInformers + serviceInformers { tasks.addTask { await informer.run() } }
            tasks.addTask { [elector] in await elector.run() }
            tasks.addTask { [self] in await loop() }
            await tasks.waitForAll()
        }
        // The feed and the informers hold each other; a stopped sync lets both go.
        feed.informers.withLock { $0 = [] }
        server.setWriter(.unknown)
        leading.set(0)
    }

    /// True when every informer has listed once.
    public var hasSynced: Bool { (sliceInformers + serviceInformers).allSatisfy(\.hasSynced) }

    public var isWriter: Bool { server.writer == .this }

    /// The legacy hosts the writer has mirrored, as registrations.
    private func mirrored() -> [LegacyRegistration] {
        sliceInformers.flatMap { $0.objects.values }.flatMap(writeBack.registrations(in:))
    }

    // MARK: Writer and standby

    private func loop() async {
        var adopted = false
        var lastPlanned: UInt64?
        var lastResync = ContinuousClock.now
        var lastSkipped: [WriteBack.Skipped] = []
        while !Task.isCancelled {
            let synced = hasSynced
            server.setReady(synced)
            let work = dirty.take()
            if elector.isLeader {
                leading.set(1)
                if !adopted && synced {
                    // Registrations were refused until now, so the mirror is the whole legacy
                    // side; each host gets one TTL from now to heartbeat.
                    server.apply(.legacyMirrored(mirrored(), time: server.now))
                    server.setWriter(.this)
                    adopted = true
                    logger.info("writing legacy hosts to Kubernetes", ["identity": .string(options.identity)])
                }
                let version = server.registry.version
                let resyncDue = ContinuousClock.now - lastResync >= options.resyncInterval
                if adopted && options.writeBack && (work.plan || version != lastPlanned || resyncDue) {
                    lastPlanned = version
                    lastResync = ContinuousClock.now
                    let plan = writeBack.plan(legacy: server.registry.legacyServices,
                                              services: serviceInformers.flatMap { $0.objects.values },
                                              slices: sliceInformers.flatMap { $0.objects.values })
                    if plan.skipped != lastSkipped {
                        for skipped in plan.skipped {
                            logger.warn("legacy service not mirrored", ["service": .string(skipped.service), "reason": .string(skipped.reason)])
                        }
                        lastSkipped = plan.skipped
                        skippedGauge.set(Double(plan.skipped.count))
                    }
                    if await !perform(plan.writes) { lastPlanned = nil }
                }
            } else {
                leading.set(0)
                adopted = false
                server.setWriter(elector.leader.map { $0 == options.identity ? .unknown : .other(address: $0) } ?? .unknown)
                if work.mirror { server.apply(.legacyMirrored(mirrored(), time: server.now)) }
            }
            try? await Task.sleep(for: options.pollInterval)
        }
    }

    /// Makes the writes; false when one failed (the next round plans again from what the
    /// informers then show).
    private func perform(_ planned: [WriteBack.Write]) async -> Bool {
        for write in planned {
            let (verb, path) = Self.describe(write)
            do {
                switch write {
                case .create(let collection, let object):
                    _ = try await client.create(collection, object)
                case .patch(let target, let patch):
                    _ = try await client.mergePatch(target, patch)
                case .delete(let target):
                    do {
                        _ = try await client.delete(target)
                    } catch let error where error.isNotFound {}
                }
                writes.increment(verb, "ok")
                logger.info("wrote to Kubernetes", ["verb": .string(verb), "path": .string(path)])
            } catch {
                // A conflict or an object that already exists means the informers are behind:
                // planning again once they caught up is the fix.
                let raced = error.isConflict || error.isAlreadyExists
                writes.increment(verb, raced ? "conflict" : "error")
                if raced {
                    logger.debug("write raced another change; planning again", ["verb": .string(verb), "path": .string(path)])
                } else {
                    logger.warn("write to Kubernetes failed", ["verb": .string(verb), "path": .string(path),
                                                               "error": .string(error.description)])
                }
                dirty.mark(plan: true)
                return false
            }
        }
        return true
    }

    private static func describe(_ write: WriteBack.Write) -> (verb: String, path: String) {
        switch write {
        case .create(let collection, let object): ("create", collection + "/" + (object["metadata"]?["name"]?.stringValue ?? ""))
        case .patch(let path, _): ("patch", path)
        case .delete(let path): ("delete", path)
        }
    }
}

/// What informer events left for the loop to look at.
private final class Dirty: Sendable {
    private let state = Mutex<(plan: Bool, mirror: Bool)>((true, true))

    func mark(plan: Bool = false, mirror: Bool = false) {
        state.withLock { $0 = ($0.plan || plan, $0.mirror || mirror) }
    }

    func take() -> (plan: Bool, mirror: Bool) {
        state.withLock { state in
            defer { state = (false, false) }
            return state
        }
    }
}

/// Turns EndpointSlice events into registry events as they arrive (no polling delay for pods).
private final class SliceFeed: Sendable {
    let server: BridgeServer
    let dirty: Dirty
    /// Set once the informers exist (they are made with this feed's handler).
    let informers = Mutex<[Informer]>([])

    init(server: BridgeServer, dirty: Dirty) {
        self.server = server
        self.dirty = dirty
    }

    func handle(_ event: Informer.Event) {
        switch event {
        case .replaced:
            // One informer per namespace: the registry's Kubernetes side is all of them together.
            let all = informers.withLock { $0 }.flatMap { $0.objects.values }.compactMap(EndpointSlice.init)
            server.apply(.slicesListed(all))
            dirty.mark(plan: true, mirror: true)
        case .upserted(let object), .deleted(let object):
            guard let slice = EndpointSlice(object) else { return }
            if case .deleted = event {
                server.apply(.sliceDeleted(namespace: slice.namespace, name: slice.name))
            } else {
                server.apply(.sliceChanged(slice))
            }
            // Only the bridge's own slices matter to the plan and to the mirror.
            if slice.managedBy == WriteBack.manager { dirty.mark(plan: true, mirror: true) }
        }
    }
}
