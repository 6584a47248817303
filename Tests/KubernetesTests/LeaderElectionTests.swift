import Document
import Foundation
import Kubernetes
import Testing
import TestSupport

@Suite struct MicroTimeTests {
    @Test func readsAndWritesRFC3339AsClientGoDoes() throws {
        let time = try #require(MicroTime(rfc3339: "2026-11-28T00:25:13.123456Z"))
        #expect(time.rfc3339 == "2026-11-28T00:25:13.123456Z")
        #expect(MicroTime(rfc3339: "2026-11-28T00:25:13Z")?.rfc3339 == "2026-11-28T00:25:13.000000Z")
        #expect(MicroTime(rfc3339: "2026-11-28T00:25:13.5Z")?.rfc3339 == "2026-11-28T00:25:13.500000Z")
        #expect(MicroTime(rfc3339: "2026-11-28T00:25:13.1234567891Z")?.rfc3339 == "2026-11-28T00:25:13.123456Z")
        #expect(MicroTime(rfc3339: "2026-11-28T02:25:13+02:00") == MicroTime(rfc3339: "2026-11-28T00:25:13Z"))
        #expect(MicroTime(rfc3339: "1970-01-01T00:00:00Z")?.microseconds == 0)
        #expect(MicroTime(rfc3339: "1969-12-31T23:59:59.5Z")?.microseconds == -500_000)
        #expect(MicroTime(microseconds: -500_000).rfc3339 == "1969-12-31T23:59:59.500000Z")
        #expect(MicroTime(rfc3339: "2024-02-29T12:00:00Z") != nil)
        for bad in ["", "2026-11-28", "2026-11-28 00:25:13Z", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                    "2026-11-28T00:25:13", "2026-11-28T00:25:13.Z", "2026-11-28T24:00:00Z", "2026-11-28T00:25:13Zjunk"] {
            #expect(MicroTime(rfc3339: bad) == nil, "\(bad)")
        }
        #expect((time + .seconds(15)).rfc3339 == "2026-11-28T00:25:28.123456Z")
        #expect((time + .milliseconds(877)).rfc3339 == "2026-11-28T00:25:14.000456Z")
    }

    @Test func agreesWithTheFixturesAndTheSystemClock() throws {
        // A Unix time the shell's date computed: 2026-11-28T00:25:13Z.
        #expect(MicroTime(rfc3339: "2026-11-28T00:25:13Z") == MicroTime(seconds: 1_795_825_513))
        // Every day for ten years round-trips, leap days included.
        var seconds: Int64 = 1_700_000_000
        for _ in 0..<3653 {
            let time = MicroTime(seconds: seconds, microseconds: 42)
            #expect(MicroTime(rfc3339: time.rfc3339) == time)
            seconds += 86_400
        }
        let now = Date().timeIntervalSince1970
        let formatted = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: now.rounded(.down)))
        #expect(MicroTime(seconds: Int64(now.rounded(.down))).rfc3339.hasPrefix(String(formatted.dropLast())))
    }
}

@Suite struct LeaderElectionTests {
    static let t0 = MicroTime(rfc3339: "2026-11-28T00:00:00Z")!

    func election(_ identity: String) -> LeaderElection {
        LeaderElection(identity: identity, leaseDuration: .seconds(15), renewDeadline: .seconds(10))
    }

    @Test func aMissingLeaseIsCreatedAndWinningItStartsLeading() {
        var a = election("a")
        let create = LeaseSpec(holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: Self.t0, renewTime: Self.t0, leaseTransitions: 0)
        #expect(a.observed(nil, now: Self.t0) == [.create(create)])
        #expect(!a.isLeader)
        #expect(a.written() == [.startedLeading])
        #expect(a.isLeader)
        // Renewing keeps the acquire time and the transitions; only renewTime moves.
        let later = Self.t0 + .seconds(2)
        var renewed = create
        renewed.renewTime = later
        #expect(a.observed(create, now: later) == [.update(renewed)])
        #expect(a.written() == [])
    }

    @Test func aHeldLeaseIsLeftAloneUntilItExpires() {
        var b = election("b")
        let held = LeaseSpec(holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: Self.t0, renewTime: Self.t0, leaseTransitions: 3)
        #expect(b.observed(held, now: Self.t0 + .seconds(15)) == [])
        #expect(b.written() == [])
        let expired = Self.t0 + .seconds(15) + .milliseconds(1)
        #expect(b.observed(held, now: expired) == [.update(LeaseSpec(holderIdentity: "b", leaseDurationSeconds: 15, acquireTime: expired,
                                                                       renewTime: expired, leaseTransitions: 4))])
        #expect(b.written() == [.startedLeading])
    }

    @Test func aReleasedLeaseIsTakenAtOnce() {
        var a = election("a"), b = election("b")
        _ = a.observed(nil, now: Self.t0)
        _ = a.written()
        let held = LeaseSpec(holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: Self.t0, renewTime: Self.t0, leaseTransitions: 0)
        let stop = Self.t0 + .seconds(1)
        let released = LeaseSpec(holderIdentity: "", leaseDurationSeconds: 1, acquireTime: stop, renewTime: stop, leaseTransitions: 0)
        #expect(a.release(held, now: stop) == [.update(released), .stoppedLeading])
        #expect(!a.isLeader)
        let next = stop + .milliseconds(10)
        #expect(b.observed(released, now: next) == [.update(LeaseSpec(holderIdentity: "b", leaseDurationSeconds: 15, acquireTime: next,
                                                                         renewTime: next, leaseTransitions: 1))])
        // Releasing a lease someone else holds writes nothing.
        var c = election("c")
        #expect(c.release(held, now: next) == [])
    }

    @Test func aLeaderThatCannotRenewStepsDownBeforeTheLeaseRunsOut() {
        var a = election("a")
        _ = a.observed(nil, now: Self.t0)
        _ = a.written()
        #expect(a.failed(now: Self.t0 + .seconds(5)) == [])
        #expect(a.failed(now: Self.t0 + .seconds(10)) == [])
        #expect(a.isLeader)
        #expect(a.failed(now: Self.t0 + .seconds(10) + .milliseconds(1)) == [.stoppedLeading])
        #expect(!a.isLeader)
        #expect(a.failed(now: Self.t0 + .seconds(11)) == [])
    }

    @Test func aLeaderThatSeesAnotherHolderStopsLeading() {
        var a = election("a")
        _ = a.observed(nil, now: Self.t0)
        _ = a.written()
        let taken = LeaseSpec(holderIdentity: "b", leaseDurationSeconds: 15, acquireTime: Self.t0, renewTime: Self.t0 + .seconds(1), leaseTransitions: 1)
        #expect(a.observed(taken, now: Self.t0 + .seconds(2)) == [.stoppedLeading])
        // A conflict lost while campaigning changes nothing until the next read.
        #expect(a.failed(now: Self.t0 + .seconds(3)) == [])
        #expect(a.written() == [])
    }

    @Test func theSpecRoundTripsThroughJSONKeepingUnknownFields() throws {
        let spec = try JSONReader.parse(#"{"holderIdentity":"a","leaseDurationSeconds":15,"acquireTime":"2026-11-28T00:00:00.000000Z","renewTime":"2026-11-28T00:00:02.500000Z","leaseTransitions":2,"preferredHolder":"x"}"#)
        let lease = LeaseSpec(spec)
        #expect(lease == LeaseSpec(holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: Self.t0, renewTime: Self.t0 + .milliseconds(2500),
                                   leaseTransitions: 2))
        #expect(lease.applied(to: spec) == spec)
        #expect(JSONWriter.string(LeaseSpec(holderIdentity: "b", leaseDurationSeconds: 1).applied(to: spec))
                == #"{"holderIdentity":"b","leaseDurationSeconds":1,"preferredHolder":"x"}"#)
        #expect(LeaseSpec(.null) == LeaseSpec())
        #expect(!LeaseSpec(.null).isHeld(at: Self.t0))
    }
}
