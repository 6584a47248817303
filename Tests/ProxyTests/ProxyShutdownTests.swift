import Glibc
import Testing
@testable import Proxy

/// The proxy's side of the stop contract, fed event by event: what SIGTERM and /quitquitquit
/// lead to in each lifecycle, and that every path ends within its deadline.
@Suite struct ProxyShutdownTests {
    typealias Machine = ProxyShutdown
    typealias Configuration = ProxyShutdown.Configuration

    /// Feeds events and returns the actions, without log lines (checked separately where they matter).
    func feed(_ machine: inout Machine, _ events: Machine.Event...) -> [Machine.Action] {
        events.flatMap { machine.handle($0) }.filter {
            switch $0 {
            case .log, .warn: return false
            default: return true
            }
        }
    }

    // MARK: Legacy sidecar: SIGTERM reaches proxy and app together

    @Test func severalAppsQuitTogetherOnlyAfterTheLast() {
        var machine = Machine(configuration: Configuration(waitsForApp: true, drainTime: .seconds(30)))
        let apps: Set<String> = ["load", "report"]
        // A Job: no signal; the first app done must not cut the other's calls out.
        #expect(machine.handle(.appExited("load", apps: apps)) == [.log("app load has exited; still serving for report")])
        #expect(feed(&machine, .appExited("load", apps: apps)) == [], "a repeated quit counts once")
        #expect(machine.state == .serving)
        #expect(feed(&machine, .appExited("report", apps: apps)) == [.failReadiness, .startTimer(.deadline, after: .seconds(30)), .drainListeners])
        #expect(ProxyAdmin.quitEvent(query: "app=load&apps=load,report") == .appExited("load", apps: apps))
        #expect(ProxyAdmin.quitEvent(query: "") == .quitRequested)
        #expect(ProxyAdmin.quitEvent(query: "app=load") == .quitRequested, "without the list, one quit is enough")
    }

    @Test func legacyServesUntilTheAppHasExitedThenDrains() {
        var machine = Machine(configuration: Configuration(waitsForApp: true, drainDelay: .seconds(5), drainTime: .seconds(30)))
        #expect(feed(&machine, .stopSignal(SIGTERM)) == [.failReadiness, .endInboundKeepAlive, .startTimer(.deadline, after: .seconds(35))])
        #expect(machine.state == .awaitingApp)
        // No delay timer: the app's supervisor holds the app's signal for the delay; the proxy
        // serves until the app is gone, however long that takes within the deadline.
        #expect(feed(&machine, .timerFired(.delayOver)) == [])
        #expect(feed(&machine, .quitRequested) == [.drainListeners])
        #expect(machine.isDraining)
        #expect(feed(&machine, .drained) == [.exit])
        #expect(machine.state == .finished)
    }

    @Test func legacyWithoutAQuitStopsAtTheDeadlineAndSaysWhy() {
        var machine = Machine(configuration: Configuration(waitsForApp: true, drainTime: .seconds(30)))
        _ = machine.handle(.stopSignal(SIGTERM))
        #expect(machine.handle(.timerFired(.deadline)) == [.warn("drain deadline reached before the app exited (no POST /quitquitquit came)"), .exit])
    }

    @Test func legacyQuitAfterSigtermDrainsWithinTheOriginalDeadline() {
        var machine = Machine(configuration: Configuration(waitsForApp: true, drainTime: .seconds(30)))
        _ = machine.handle(.stopSignal(SIGTERM))
        // No new deadline: the one set at SIGTERM still bounds the drain.
        #expect(feed(&machine, .quitRequested) == [.drainListeners])
        #expect(feed(&machine, .timerFired(.deadline)) == [.exit])
    }

    // MARK: Native sidecar or standalone: SIGTERM comes after the app has gone

    @Test func nativeDrainsAtOnce() {
        var machine = Machine(configuration: Configuration(drainTime: .seconds(30)))
        #expect(feed(&machine, .stopSignal(SIGTERM)) == [.failReadiness, .endInboundKeepAlive, .startTimer(.deadline, after: .seconds(30)), .drainListeners])
        #expect(feed(&machine, .drained) == [.exit])
    }

    @Test func aDrainDelayKeepsAcceptingThenDrains() {
        var machine = Machine(configuration: Configuration(drainDelay: .seconds(5), drainTime: .seconds(10)))
        let actions = machine.handle(.stopSignal(SIGINT))
        #expect(actions.contains(.log("SIGINT: readiness fails; serving for 5s while endpoint removal propagates")))
        #expect(actions.filter { if case .log = $0 { false } else { true } }
            == [.failReadiness, .endInboundKeepAlive, .startTimer(.deadline, after: .seconds(15)), .startTimer(.delayOver, after: .seconds(5))])
        #expect(machine.state == .delaying)
        #expect(feed(&machine, .drained) == [], "no connection counting before the drain")
        #expect(feed(&machine, .timerFired(.delayOver)) == [.drainListeners])
        #expect(feed(&machine, .drained) == [.exit])
    }

    @Test func aQuitDuringTheDelayDrainsAtOnce() {
        var machine = Machine(configuration: Configuration(drainDelay: .seconds(5)))
        _ = machine.handle(.stopSignal(SIGTERM))
        #expect(feed(&machine, .quitRequested) == [.drainListeners])
        #expect(feed(&machine, .timerFired(.delayOver)) == [], "the delay is over already")
    }

    @Test func aStuckConnectionEndsAtTheDeadline() {
        var machine = Machine(configuration: Configuration(drainDelay: .milliseconds(500), drainTime: .seconds(2)))
        #expect(feed(&machine, .stopSignal(SIGTERM), .timerFired(.delayOver)).last == .drainListeners)
        #expect(machine.handle(.timerFired(.deadline)) == [.warn("drain deadline reached"), .exit])
    }

    // MARK: Quit without a signal (a Job's app has exited)

    @Test func quitWithoutASignalFailsReadinessAndDrainsForAtMostTheDrainTime() {
        var machine = Machine(configuration: Configuration(waitsForApp: true, drainDelay: .seconds(5), drainTime: .seconds(30)))
        #expect(feed(&machine, .quitRequested) == [.failReadiness, .startTimer(.deadline, after: .seconds(30)), .drainListeners])
        #expect(feed(&machine, .drained) == [.exit])
    }

    // MARK: Repeats and stale events

    @Test func repeatedSignalsAndQuitsChangeNothing() {
        var machine = Machine(configuration: Configuration(waitsForApp: true))
        _ = machine.handle(.stopSignal(SIGTERM))
        #expect(machine.handle(.stopSignal(SIGTERM)) == [.log("already stopping; ignored a repeated stop signal")])
        #expect(machine.handle(.stopSignal(SIGINT)) == [.log("already stopping; ignored a repeated stop signal")])
        #expect(feed(&machine, .quitRequested) == [.drainListeners])
        #expect(feed(&machine, .quitRequested, .stopSignal(SIGTERM)) == [], "one drain")
        #expect(feed(&machine, .drained, .drained, .timerFired(.deadline)) == [.exit], "one exit")
    }

    @Test func nothingButAStopOrAQuitLeavesServing() {
        var machine = Machine(configuration: Configuration(drainDelay: .seconds(1)))
        #expect(feed(&machine, .drained, .timerFired(.delayOver), .timerFired(.deadline)) == [])
        #expect(machine.state == .serving)
    }
}
