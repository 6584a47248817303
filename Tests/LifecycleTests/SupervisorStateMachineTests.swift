import Glibc
import Testing
@testable import Lifecycle

/// The supervisor's decisions, fed event by event. Names follow the timelines in
/// research/lifecycle.md (A = startup, B = termination, C = Jobs, D = PID-1 duties).
@Suite struct SupervisorStateMachineTests {
    typealias Machine = SupervisorStateMachine
    typealias Configuration = SupervisorStateMachine.Configuration

    /// The legacy-mode app container: wait for /ready, drain and quit after the app.
    static let legacy = Configuration(waitsForReadiness: true, readyTimeout: .seconds(120), drainsProxy: true, quitsProxy: true)
    static let pid: pid_t = 42

    /// Feeds events and returns the actions, without log lines (checked separately where they matter).
    func feed(_ machine: inout Machine, _ events: Machine.Event...) -> [Machine.Action] {
        events.flatMap { machine.handle($0) }.filter {
            if case .log = $0 { return false }
            return true
        }
    }

    func logs(_ actions: [Machine.Action]) -> [LogRecord] {
        actions.compactMap {
            if case .log(let record) = $0 { return record }
            return nil
        }
    }

    /// A machine already running the app (readiness passed).
    func running(_ configuration: Configuration = legacy) -> Machine {
        var machine = Machine(configuration: configuration)
        _ = feed(&machine, .start, .readinessProbed(.answered(status: 200)), .spawned(pid: Self.pid))
        return machine
    }

    // MARK: A. Startup gating

    @Test func a1SlowProxyStartsTheAppOnlyAfterTheFirst200() {
        var machine = Machine(configuration: Self.legacy)
        #expect(feed(&machine, .start) == [.startTimer(.readyDeadline, after: .seconds(120)), .probeReadiness])
        #expect(feed(&machine, .readinessProbed(.refused)) == [.startTimer(.nextProbe, after: .milliseconds(10))])
        #expect(feed(&machine, .timerFired(.nextProbe)) == [.probeReadiness])
        #expect(feed(&machine, .readinessProbed(.answered(status: 503))) == [.startTimer(.nextProbe, after: .milliseconds(10))])
        #expect(feed(&machine, .timerFired(.nextProbe)) == [.probeReadiness])
        #expect(feed(&machine, .readinessProbed(.answered(status: 200))) == [.cancelTimer(.readyDeadline), .spawnApp])
        #expect(feed(&machine, .spawned(pid: Self.pid)) == [])
    }

    @Test func a1NotReadyAnswersAreLoggedOnlyWhenTheyChange() {
        var machine = Machine(configuration: Self.legacy)
        _ = machine.handle(.start)
        let first = logs(machine.handle(.readinessProbed(.answered(status: 503))))
        let same = logs(machine.handle(.readinessProbed(.answered(status: 503))))
        let changed = logs(machine.handle(.readinessProbed(.refused)))
        #expect(first == [LogRecord(.info, "proxy is not ready yet", [("answer", "status 503")])])
        #expect(same.isEmpty)
        #expect(changed == [LogRecord(.info, "proxy is not ready yet", [("answer", "connection refused")])])
        #expect(logs(machine.handle(.readinessProbed(.answered(status: 200)))) == [LogRecord(.info, "proxy is ready", [("probes", "4")])])
    }

    @Test func a2HungAdminEndpointKeepsPolling() {
        var machine = Machine(configuration: Self.legacy)
        _ = feed(&machine, .start)
        #expect(feed(&machine, .readinessProbed(.timedOut)) == [.startTimer(.nextProbe, after: .milliseconds(10))])
        #expect(feed(&machine, .timerFired(.nextProbe), .readinessProbed(.failed("connection reset"))) == [.probeReadiness, .startTimer(.nextProbe, after: .milliseconds(10))])
        #expect(feed(&machine, .timerFired(.nextProbe), .readinessProbed(.answered(status: 200))) == [.probeReadiness, .cancelTimer(.readyDeadline), .spawnApp])
    }

    @Test func a3NeverReadyFatalTimeoutQuitsTheProxyAndNeverSpawns() {
        var machine = Machine(configuration: Configuration(waitsForReadiness: true, readyTimeout: .seconds(5), quitsProxy: true))
        let actions = [machine.handle(.start), machine.handle(.readinessProbed(.answered(status: 503))),
                       machine.handle(.timerFired(.readyDeadline))].flatMap { $0 }
        #expect(!actions.contains(.spawnApp))
        #expect(actions.last == .callProxy(.quit))
        #expect(logs(actions).last == LogRecord(.error, "proxy not ready in time; not starting the app", [("probes", "1"), ("last_answer", "status 503")]))
        #expect(feed(&machine, .proxyCalled(.quit, .answered(status: 200))) == [.exit(69)])
        #expect(machine.state == .finished(exitCode: 69))
    }

    @Test func a3WithoutQuitURLExitsAt69Directly() {
        var machine = Machine(configuration: Configuration(waitsForReadiness: true, readyTimeout: .seconds(5)))
        _ = feed(&machine, .start)
        #expect(feed(&machine, .timerFired(.readyDeadline)) == [.cancelTimer(.nextProbe), .exit(SupervisorExit.proxyUnavailable)])
    }

    @Test func a4NonFatalTimeoutStartsTheAppWithAWarning() {
        var machine = Machine(configuration: Configuration(waitsForReadiness: true, readyTimeout: .seconds(5), onReadyTimeout: .start, quitsProxy: true))
        _ = feed(&machine, .start, .readinessProbed(.refused))
        let actions = machine.handle(.timerFired(.readyDeadline))
        #expect(actions.last == .spawnApp)
        #expect(logs(actions).map(\.level) == [.warning])
        // The probe that was in flight answers late: nothing happens.
        #expect(feed(&machine, .readinessProbed(.answered(status: 200))) == [])
        #expect(feed(&machine, .spawned(pid: Self.pid), .appExited(.exited(code: 0))) == [.callProxy(.quit)])
    }

    @Test func a6SigtermWhileWaitingExits143AndStillQuitsTheProxy() {
        var machine = Machine(configuration: Self.legacy)
        _ = feed(&machine, .start, .readinessProbed(.answered(status: 503)))
        #expect(feed(&machine, .signal(SIGTERM)) == [.cancelTimer(.nextProbe), .cancelTimer(.readyDeadline), .callProxy(.drain)])
        #expect(feed(&machine, .proxyCalled(.drain, .answered(status: 200))) == [.callProxy(.quit)])
        #expect(feed(&machine, .proxyCalled(.quit, .answered(status: 200))) == [.exit(143)])
    }

    @Test func a6SigintWhileWaitingExits130() {
        var machine = Machine(configuration: Configuration(waitsForReadiness: true))
        _ = feed(&machine, .start)
        #expect(feed(&machine, .signal(SIGINT)) == [.cancelTimer(.nextProbe), .exit(130)])
    }

    @Test func a7SpuriousSignalsWhileWaitingAreIgnored() {
        var machine = Machine(configuration: Self.legacy)
        _ = feed(&machine, .start)
        for signal in [SIGHUP, SIGWINCH, SIGURG, SIGUSR1, SIGUSR2, SIGALRM] {
            let actions = machine.handle(.signal(signal))
            #expect(logs(actions) == [LogRecord(.info, "ignored a signal while waiting for the proxy", [("signal", signalName(signal))])])
            #expect(actions.count == 1)
        }
        #expect(feed(&machine, .readinessProbed(.answered(status: 200))) == [.cancelTimer(.readyDeadline), .spawnApp])
    }

    @Test func a8ReadinessFlapsAfterStartChangeNothing() {
        var machine = running()
        #expect(feed(&machine, .readinessProbed(.answered(status: 503)), .timerFired(.nextProbe), .timerFired(.readyDeadline)) == [])
        #expect(feed(&machine, .signal(SIGTERM)) == [.sendSignal(SIGTERM, to: .process(Self.pid))])
    }

    @Test func a9NativeModeStartsAtOnceAndExitsWithoutProxyCalls() {
        var machine = Machine(configuration: Configuration())
        #expect(feed(&machine, .start) == [.spawnApp])
        #expect(feed(&machine, .spawned(pid: Self.pid), .appExited(.exited(code: 0))) == [.exit(0)])
    }

    // MARK: B. Termination

    @Test func b1SigtermIsForwardedAtOnceAndTheProxyIsDrainedOnlyAfterTheAppExits() {
        var machine = running()
        #expect(feed(&machine, .signal(SIGTERM)) == [.sendSignal(SIGTERM, to: .process(Self.pid))])
        // The app drains for a while: the proxy is left alone however long it takes.
        #expect(feed(&machine, .timerFired(.proxyRetry), .readinessProbed(.answered(status: 503))) == [])
        #expect(feed(&machine, .appExited(.exited(code: 0))) == [.callProxy(.drain)])
        #expect(feed(&machine, .proxyCalled(.drain, .answered(status: 200))) == [.callProxy(.quit)])
        #expect(feed(&machine, .proxyCalled(.quit, .answered(status: 200))) == [.exit(0)])
    }

    @Test func b2DrainDelayHoldsTheStopSignalWhileOtherSignalsPass() {
        var configuration = Self.legacy
        configuration.drainDelay = .seconds(5)
        configuration.killAfter = .seconds(25)
        var machine = running(configuration)
        let held = machine.handle(.signal(SIGTERM))
        // The kill deadline counts from the signal the kubelet sent, not from the app's.
        #expect(held.filter { if case .log = $0 { false } else { true } }
            == [.startTimer(.drainDelay, after: .seconds(5)), .startTimer(.killDeadline, after: .seconds(25))])
        #expect(logs(held) == [LogRecord(.info, "holding the stop signal: the app keeps serving while the pod's endpoints are removed",
                                         [("signal", "SIGTERM"), ("delay", "5.0 seconds")])])
        #expect(feed(&machine, .signal(SIGHUP)) == [.sendSignal(SIGHUP, to: .process(Self.pid))])
        #expect(feed(&machine, .timerFired(.drainDelay)) == [.sendSignal(SIGTERM, to: .process(Self.pid))])
        #expect(feed(&machine, .signal(SIGTERM)) == [.sendSignal(SIGTERM, to: .process(Self.pid))], "held once only")
        #expect(feed(&machine, .appExited(.exited(code: 0))) == [.cancelTimer(.killDeadline), .callProxy(.drain)])
    }

    @Test func b2ASecondStopSignalEndsTheDrainDelay() {
        var machine = running(Configuration(quitsProxy: true, drainDelay: .seconds(5)))
        _ = machine.handle(.signal(SIGTERM))
        #expect(feed(&machine, .signal(SIGTERM)) == [.cancelTimer(.drainDelay), .sendSignal(SIGTERM, to: .process(Self.pid))])
        #expect(feed(&machine, .timerFired(.drainDelay)) == [], "a stale timer")

        var interrupted = running(Configuration(quitsProxy: true, drainDelay: .seconds(5)))
        _ = interrupted.handle(.signal(SIGTERM))
        #expect(feed(&interrupted, .signal(SIGINT))
            == [.cancelTimer(.drainDelay), .sendSignal(SIGTERM, to: .process(Self.pid)), .sendSignal(SIGINT, to: .process(Self.pid))])
    }

    @Test func b2AppExitingDuringTheDrainDelayEndsThePod() {
        // restartPolicy Always: an exit during the hold still ends the pod (the kubelet asked).
        var machine = running(Configuration(quitsProxy: true, quitOn: .stop, drainDelay: .seconds(5)))
        _ = machine.handle(.signal(SIGTERM))
        #expect(feed(&machine, .appExited(.exited(code: 1))) == [.cancelTimer(.drainDelay), .callProxy(.quit)])
        #expect(feed(&machine, .proxyCalled(.quit, .answered(status: 200))) == [.exit(1)])
    }

    @Test func b2ASignalDuringTheSpawnIsHeldToo() {
        var machine = Machine(configuration: Configuration(drainDelay: .seconds(1)))
        #expect(feed(&machine, .start, .signal(SIGTERM)) == [.spawnApp])
        #expect(feed(&machine, .spawned(pid: Self.pid)) == [.startTimer(.drainDelay, after: .seconds(1))])
        #expect(feed(&machine, .timerFired(.drainDelay)) == [.sendSignal(SIGTERM, to: .process(Self.pid))])
    }

    @Test func b4AppIgnoringSigtermIsKilledAfterTheDeadlineAndTheProxyStillQuits() {
        var configuration = Self.legacy
        configuration.killAfter = .seconds(25)
        var machine = running(configuration)
        #expect(feed(&machine, .signal(SIGTERM)) == [.sendSignal(SIGTERM, to: .process(Self.pid)), .startTimer(.killDeadline, after: .seconds(25))])
        #expect(feed(&machine, .timerFired(.killDeadline)) == [.sendSignal(SIGKILL, to: .process(Self.pid))])
        #expect(feed(&machine, .appExited(.killed(signal: SIGKILL))) == [.cancelTimer(.killDeadline), .callProxy(.drain)])
        #expect(feed(&machine, .proxyCalled(.drain, .answered(status: 200)), .proxyCalled(.quit, .answered(status: 200))) == [.callProxy(.quit), .exit(137)])
    }

    @Test func b8ProxyAlreadyGoneWhenTheAppExitsIsNotAnError() {
        var machine = running()
        let actions = [machine.handle(.appExited(.exited(code: 0))), machine.handle(.proxyCalled(.drain, .refused)),
                       machine.handle(.proxyCalled(.quit, .refused))].flatMap { $0 }
        #expect(actions.last == .exit(0))
        #expect(logs(actions).allSatisfy { $0.level != .error })
    }

    @Test func b9ExtraSignalsAreForwardedEachTimeButArmTheKillDeadlineAndDrainOnce() {
        var configuration = Self.legacy
        configuration.killAfter = .seconds(10)
        var machine = running(configuration)
        let actions = feed(&machine, .signal(SIGTERM), .signal(SIGTERM), .signal(SIGINT), .appExited(.exited(code: 0)))
        #expect(actions == [.sendSignal(SIGTERM, to: .process(Self.pid)), .startTimer(.killDeadline, after: .seconds(10)),
                            .sendSignal(SIGTERM, to: .process(Self.pid)), .sendSignal(SIGINT, to: .process(Self.pid)),
                            .cancelTimer(.killDeadline), .callProxy(.drain)])
        // Signals while the proxy is being stopped are only logged.
        #expect(feed(&machine, .signal(SIGTERM)) == [])
        #expect(feed(&machine, .proxyCalled(.drain, .answered(status: 200)), .proxyCalled(.quit, .answered(status: 200))) == [.callProxy(.quit), .exit(0)])
    }

    // MARK: C. Jobs

    @Test(arguments: [(AppTermination.exited(code: 0), Int32(0)), (.exited(code: 3), 3), (.killed(signal: SIGKILL), 137)])
    func c1c2c3JobExitQuitsTheProxyAndKeepsTheAppsStatus(termination: AppTermination, code: Int32) {
        var machine = running(Configuration(quitsProxy: true))
        #expect(feed(&machine, .appExited(termination)) == [.callProxy(.quit)])
        #expect(feed(&machine, .proxyCalled(.quit, .answered(status: 200))) == [.exit(code)])
    }

    /// Which exits end the pod follows its restartPolicy: with Always only the kubelet's stop
    /// signal does, with OnFailure also success; a crash that the kubelet will restart leaves the
    /// proxy serving.
    @Test(arguments: [
        (Machine.QuitPolicy.stop, AppTermination.exited(code: 1), false, false),
        (.stop, .exited(code: 0), false, false),
        (.stop, .exited(code: 143), true, true),
        (.success, .exited(code: 1), false, false),
        (.success, .exited(code: 0), false, true),
        (.success, .killed(signal: SIGTERM), true, true),
        (.exit, .exited(code: 1), false, true),
    ])
    func quitPolicyFollowsTheRestartPolicy(policy: Machine.QuitPolicy, termination: AppTermination, stopped: Bool, quits: Bool) {
        var machine = running(Configuration(quitsProxy: true, quitOn: policy))
        if stopped { _ = feed(&machine, .signal(SIGTERM)) }
        let actions = feed(&machine, .appExited(termination))
        #expect(actions == (quits ? [.callProxy(.quit)] : [.exit(termination.exitCode)]))
    }

    @Test func c4QuitEndpointFailingIsRetriedABoundedNumberOfTimes() {
        var machine = running(Configuration(quitsProxy: true))
        #expect(feed(&machine, .appExited(.exited(code: 3))) == [.callProxy(.quit)])
        #expect(feed(&machine, .proxyCalled(.quit, .failed("connection reset"))) == [.startTimer(.proxyRetry, after: .milliseconds(100))])
        #expect(feed(&machine, .timerFired(.proxyRetry)) == [.callProxy(.quit)])
        #expect(feed(&machine, .proxyCalled(.quit, .answered(status: 503))) == [.startTimer(.proxyRetry, after: .milliseconds(100))])
        #expect(feed(&machine, .timerFired(.proxyRetry)) == [.callProxy(.quit)])
        let last = machine.handle(.proxyCalled(.quit, .failed("connection reset")))
        #expect(last.last == .exit(3))
        #expect(logs(last).map(\.level) == [.error])
    }

    @Test func c4QuitEndpointThatDoesNotAnswerInTimeIsNotAskedAgain() {
        var machine = running(Configuration(quitsProxy: true))
        _ = feed(&machine, .appExited(.exited(code: 0)))
        #expect(feed(&machine, .proxyCalled(.quit, .timedOut)) == [.exit(0)])
    }

    @Test func c5Quit404IsLoggedAsAnErrorAndNotRetried() {
        var machine = running(Configuration(quitsProxy: true))
        _ = feed(&machine, .appExited(.exited(code: 3)))
        let actions = machine.handle(.proxyCalled(.quit, .answered(status: 404)))
        #expect(actions.last == .exit(3))
        #expect(logs(actions) == [LogRecord(.error, "proxy call failed; giving up (the proxy may keep the pod running)",
                                            [("call", "quit"), ("answer", "status 404"), ("attempt", "1")])])
    }

    @Test func c5DrainFailureStillQuits() {
        var machine = running()
        _ = feed(&machine, .appExited(.exited(code: 0)))
        #expect(feed(&machine, .proxyCalled(.drain, .answered(status: 405))) == [.callProxy(.quit)])
    }

    @Test func staleAnswersFromAnotherCallAreIgnored() {
        var machine = running()
        _ = feed(&machine, .appExited(.exited(code: 0)))
        #expect(feed(&machine, .proxyCalled(.quit, .answered(status: 200))) == [])
        #expect(feed(&machine, .proxyCalled(.drain, .answered(status: 200))) == [.callProxy(.quit)])
    }

    // MARK: D. PID-1 duties

    @Test func d2ProcessGroupModeSignalsTheGroup() {
        var machine = running(Configuration(signalsProcessGroup: true, killAfter: .seconds(1)))
        #expect(feed(&machine, .signal(SIGTERM), .timerFired(.killDeadline)) == [
            .sendSignal(SIGTERM, to: .processGroup(Self.pid)), .startTimer(.killDeadline, after: .seconds(1)),
            .sendSignal(SIGKILL, to: .processGroup(Self.pid)),
        ])
    }

    /// (waitpid status, exit code): exited 0, 1, 2, 255; killed by TERM, KILL, SEGV, SEGV with a core dump (0x80).
    static let waitStatuses: [(Int32, Int32)] = [
        (0 << 8, 0), (1 << 8, 1), (2 << 8, 2), (255 << 8, 255),
        (SIGTERM, 143), (SIGKILL, 137), (SIGSEGV, 139), (SIGSEGV | 0x80, 139),
    ]

    @Test(arguments: waitStatuses)
    func d3ExitCodeTable(waitStatus: Int32, code: Int32) {
        #expect(AppTermination(waitStatus: waitStatus).exitCode == code)
    }

    @Test func d3SpawnFailuresMapTo127And126() {
        #expect(SupervisorExit.forSpawnError(ENOENT) == 127)
        #expect(SupervisorExit.forSpawnError(ENOTDIR) == 127)
        #expect(SupervisorExit.forSpawnError(EACCES) == 126)
        #expect(SupervisorExit.forSpawnError(ENOEXEC) == 126)
        var machine = Machine(configuration: Configuration(quitsProxy: true))
        _ = feed(&machine, .start)
        #expect(feed(&machine, .spawnFailed(errno: ENOENT), .proxyCalled(.quit, .answered(status: 200))) == [.callProxy(.quit), .exit(127)])
    }

    @Test func d4EverySignalIsForwardedOnce() {
        var machine = running(Configuration())
        let signals = [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH, SIGURG, SIGCONT]
        var actions: [Machine.Action] = []
        for signal in signals { actions += feed(&machine, .signal(signal)) }
        #expect(actions == signals.map { .sendSignal($0, to: .process(Self.pid)) })
    }

    @Test func d5SignalsDuringTheSpawnAreDeliveredOnceTheAppExists() {
        var machine = Machine(configuration: Configuration(killAfter: .seconds(3)))
        #expect(feed(&machine, .start) == [.spawnApp])
        #expect(feed(&machine, .signal(SIGTERM), .signal(SIGUSR1)) == [])
        #expect(feed(&machine, .spawned(pid: Self.pid)) == [
            .sendSignal(SIGTERM, to: .process(Self.pid)), .startTimer(.killDeadline, after: .seconds(3)),
            .sendSignal(SIGUSR1, to: .process(Self.pid)),
        ])
    }

    @Test func d5SignalDuringAFailedSpawnKeepsTheSpawnFailureStatus() {
        var machine = Machine(configuration: Configuration())
        _ = feed(&machine, .start, .signal(SIGTERM))
        #expect(feed(&machine, .spawnFailed(errno: EACCES)) == [.exit(126)])
    }

    @Test func logLinesAreLogfmt() {
        #expect(LogRecord(.info, "app exited", [("status", "exited with 3"), ("code", "3")]).description
            == #"level=info msg="app exited" status="exited with 3" code=3"#)
        #expect(LogRecord(.error, "x", [("error", "say \"hi\"\n")]).description == #"level=error msg=x error="say \"hi\"\n""#)
    }
}
