import Document
import Foundation
import Kube
import Kubernetes
import Net
import Synchronization
import Testing
import TestSupport

/// Leadership changes of several electors, in the order they happened.
private final class Timeline: Sendable {
    private let changes = Mutex<[(identity: String, leading: Bool, at: ContinuousClock.Instant)]>([])

    func record(_ identity: String, _ leading: Bool) { changes.withLock { $0.append((identity, leading, .now)) } }

    var summary: [String] { changes.withLock { $0.map { "\($0.identity) \($0.leading ? "leads" : "stops")" } } }

    /// The most electors that were leading at once.
    var mostLeadersAtOnce: Int {
        var leading: Set<String> = []
        var most = 0
        for change in changes.withLock({ $0 }) {
            if change.leading { leading.insert(change.identity) } else { leading.remove(change.identity) }
            most = max(most, leading.count)
        }
        return most
    }

    func when(_ identity: String, leading: Bool) -> ContinuousClock.Instant? {
        changes.withLock { $0.last { $0.identity == identity && $0.leading == leading }?.at }
    }
}

private let leasePath = LeaderElector.leasePath(namespace: "tandem", name: "bridge")

private struct Candidate {
    let elector: LeaderElector
    let task: Task<Void, Never>

    init(_ identity: String, client: KubeClient, timeline: Timeline, leaseDuration: Duration = .seconds(2)) {
        let elector = LeaderElector(client: client, namespace: "tandem", name: "bridge", identity: identity, leaseDuration: leaseDuration,
                                    renewDeadline: .seconds(1), retryPeriod: .milliseconds(100)) { timeline.record(identity, $0) }
        self.elector = elector
        task = Task { await elector.run() }
    }

    func stop() async {
        task.cancel()
        await task.value
    }
}

@Suite(.serialized) struct LeaderElectorTests {
    @Test func oneOfTwoLeadsAndTheOtherTakesOverWhenItStops() async throws {
        let fixture = try await KubeFixture.start()
        let timeline = Timeline()
        let a = Candidate("a", client: fixture.client, timeline: timeline)
        let b = Candidate("b", client: fixture.client, timeline: timeline)
        #expect(await eventually { a.elector.isLeader || b.elector.isLeader })
        // Several renewals later there is still exactly one leader, named in the Lease.
        try await Task.sleep(for: .milliseconds(500))
        #expect(a.elector.isLeader != b.elector.isLeader)
        let (leader, follower) = a.elector.isLeader ? (a, b) : (b, a)
        let lease = try #require(fixture.server.object(leasePath))
        #expect(lease["spec"]?["holderIdentity"] == .string(leader.elector.identity))
        #expect(follower.elector.leader == leader.elector.identity)
        // client-go's field names and formats.
        #expect(lease["spec"]?.objectValue?.keys == ["holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions"])
        #expect(lease["spec"]?["leaseDurationSeconds"] == 2)
        let renewTime = try #require(lease["spec"]?["renewTime"]?.stringValue)
        #expect(renewTime.count == 27 && renewTime.hasSuffix("Z") && MicroTime(rfc3339: renewTime) != nil)
        #expect(lease["spec"]?["leaseTransitions"] == 0)

        // The leader stops: it releases the Lease, and the other takes it without waiting out the lease.
        await leader.stop()
        #expect(!leader.elector.isLeader)
        #expect(await eventually { follower.elector.isLeader })
        let handover = try #require(timeline.when(follower.elector.identity, leading: true)) - (try #require(timeline.when(leader.elector.identity, leading: false)))
        #expect(handover < .seconds(1))
        #expect(fixture.server.object(leasePath)?["spec"]?["holderIdentity"] == .string(follower.elector.identity))
        #expect(fixture.server.object(leasePath)?["spec"]?["leaseTransitions"] == 1)
        #expect(timeline.mostLeadersAtOnce == 1)
        await follower.stop()
        #expect(fixture.server.object(leasePath)?["spec"]?["holderIdentity"] == "")
        #expect(timeline.summary.last == "\(follower.elector.identity) stops")
        await fixture.stop()
    }

    @Test func aLeaderCutOffFromTheServerStepsDownBeforeTheOtherTakesOver() async throws {
        let fixture = try await KubeFixture.start()
        // a's token is read from a file for every request: emptying the file cuts a off.
        let tokenFile = NSTemporaryDirectory() + "tandem-token-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        try fixture.server.token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        var config = fixture.client.config
        (config.token, config.tokenFile) = (nil, tokenFile)
        let isolated = try KubeClient(config: config, loop: fixture.group.next())
        let timeline = Timeline()
        let a = Candidate("a", client: isolated, timeline: timeline)
        #expect(await eventually { a.elector.isLeader })
        let b = Candidate("b", client: fixture.client, timeline: timeline)
        try await Task.sleep(for: .milliseconds(300))
        #expect(!b.elector.isLeader)
        let cut = ContinuousClock.now
        try "revoked".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        // a gives up after its renew deadline (1 s); b waits for the lease (2 s) to run out.
        #expect(await eventually(timeout: .seconds(6)) { b.elector.isLeader })
        let stepDown = try #require(timeline.when("a", leading: false)) - cut
        let takeOver = try #require(timeline.when("b", leading: true)) - cut
        #expect(stepDown >= .milliseconds(900) && stepDown < takeOver)
        #expect(takeOver >= .milliseconds(1900) && takeOver < .seconds(4))
        #expect(timeline.mostLeadersAtOnce == 1)
        #expect(timeline.summary == ["a leads", "a stops", "b leads"])
        await a.stop()
        await b.stop()
        await fixture.stop()
    }

    @Test func aRenewalThatLosesARaceReadsAgainAndKeepsLeading() async throws {
        let fixture = try await KubeFixture.start()
        let server = fixture.server
        let timeline = Timeline()
        let a = Candidate("a", client: fixture.client, timeline: timeline, leaseDuration: .seconds(10))
        #expect(await eventually { a.elector.isLeader })
        // Someone else writes the Lease (a label, say) between a's read and its renewal, so
        // the renewal carries a stale resourceVersion and gets 409 Conflict.
        let raced = Mutex<MicroTime?>(nil)
        server.beforeNext(.put) {
            let lease = server.object(leasePath)!
            server.seed("/apis/coordination.k8s.io/v1/namespaces/tandem/leases", FakeKubeAPIServer.mergePatch(lease, ["metadata": ["labels": ["x": "y"]]]))
            raced.withLock { $0 = MicroTime(rfc3339: lease["spec"]!["renewTime"]!.stringValue!) }
        }
        #expect(await eventually { raced.withLock { $0 } != nil })
        let before = try #require(raced.withLock { $0 })
        // Only a fresh read can keep the label: a renewal made from it, later than the raced one.
        #expect(await eventually {
            let lease = server.object(leasePath)
            return lease?["metadata"]?["labels"]?["x"] == "y"
                && (lease?["spec"]?["renewTime"]?.stringValue.flatMap { MicroTime(rfc3339: $0) }).map { $0 > before } == true
        })
        #expect(a.elector.isLeader)
        #expect(timeline.summary == ["a leads"])
        #expect(server.object(leasePath)?["spec"]?["holderIdentity"] == "a")
        await a.stop()
        await fixture.stop()
    }
}
