import Glibc

/// Every decision `tandem supervise` makes, with no I/O: the shell feeds it events (a probe
/// answered, a signal arrived, the app exited, a timer fired) and performs the actions it returns,
/// in order. Tests drive it with events alone.
///
/// The order it enforces: wait for the proxy to be ready, start the app, forward signals to it
/// (holding a stop signal for the drain delay, if any), and only after the app has exited drain
/// and quit the proxy, then exit with the app's status.
/// Every path that ends the supervisor, including a signal during the wait or a failed spawn,
/// goes through the same proxy shutdown, so a Job's pod always completes.
public struct SupervisorStateMachine: Sendable {
    public struct Configuration: Equatable, Sendable {
        public enum OnReadyTimeout: String, Equatable, Sendable { case fail, start }

        /// Whether to wait for the proxy's readiness before starting the app.
        public var waitsForReadiness: Bool
        /// How long to wait for readiness; nil waits for as long as it takes.
        public var readyTimeout: Duration?
        public var onReadyTimeout: OnReadyTimeout
        /// Pause between a not-ready answer and the next probe: short, so the app starts within
        /// milliseconds of the proxy becoming ready.
        public var probeInterval: Duration
        public var drainsProxy: Bool
        public var quitsProxy: Bool
        /// Which app exits mean the pod is going away, so the proxy should drain and quit.
        public var quitOn: QuitPolicy
        /// Signals go to the app's process group (the app leads its own group) instead of the app.
        public var signalsProcessGroup: Bool
        /// How long a stop signal is held before it reaches the app, so the app keeps serving
        /// while the pod's endpoint removal propagates: in legacy mode nothing else can delay the
        /// app's SIGTERM (native mode has the kubelet's preStop `sleep`). nil passes it on at once.
        public var drainDelay: Duration?
        /// After a stop signal, how long the app may take before it is sent SIGKILL; nil never.
        public var killAfter: Duration?
        /// Attempts per proxy call when the proxy answers 5xx or the call fails mid-way.
        public var proxyCallAttempts: Int
        public var proxyRetryDelay: Duration

        public init(waitsForReadiness: Bool = false, readyTimeout: Duration? = nil, onReadyTimeout: OnReadyTimeout = .fail,
                    probeInterval: Duration = .milliseconds(10), drainsProxy: Bool = false, quitsProxy: Bool = false,
                    quitOn: QuitPolicy = .exit, signalsProcessGroup: Bool = false, drainDelay: Duration? = nil, killAfter: Duration? = nil,
                    proxyCallAttempts: Int = 3, proxyRetryDelay: Duration = .milliseconds(100)) {
            self.waitsForReadiness = waitsForReadiness
            self.readyTimeout = readyTimeout
            self.onReadyTimeout = onReadyTimeout
            self.probeInterval = probeInterval
            self.drainsProxy = drainsProxy
            self.quitsProxy = quitsProxy
            self.quitOn = quitOn
            self.signalsProcessGroup = signalsProcessGroup
            self.drainDelay = drainDelay
            self.killAfter = killAfter
            self.proxyCallAttempts = proxyCallAttempts
            self.proxyRetryDelay = proxyRetryDelay
        }
    }

    /// When the app's exit ends the pod, following the pod's `restartPolicy`: with `Never` any
    /// exit does (`exit`); with `OnFailure` a failing app is restarted, so only success does
    /// (`success`); with `Always` every exit is restarted, so only a stop signal from the kubelet
    /// means the pod is going away (`stop`). Otherwise the proxy keeps serving for the restart.
    public enum QuitPolicy: String, CaseIterable, Sendable {
        case exit, success, stop
    }

    public enum Timer: Hashable, Sendable {
        case readyDeadline, nextProbe, drainDelay, killDeadline, proxyRetry
    }

    public enum ProxyCall: String, Equatable, Sendable {
        case drain, quit
    }

    /// Where a signal goes: the app's pid, or its process group.
    public enum SignalDestination: Equatable, Sendable {
        case process(pid_t)
        case processGroup(pid_t)
    }

    public enum Event: Equatable, Sendable {
        case start
        case readinessProbed(AdminOutcome)
        case timerFired(Timer)
        /// A signal sent to the supervisor (never SIGCHLD: the shell reaps and reports `appExited`).
        case signal(Int32)
        case spawned(pid: pid_t)
        case spawnFailed(errno: Int32)
        case appExited(AppTermination)
        case proxyCalled(ProxyCall, AdminOutcome)
    }

    public enum Action: Equatable, Sendable {
        case probeReadiness
        case startTimer(Timer, after: Duration)
        case cancelTimer(Timer)
        case spawnApp
        case sendSignal(Int32, to: SignalDestination)
        case callProxy(ProxyCall)
        case log(LogRecord)
        case exit(Int32)
    }

    enum State: Equatable, Sendable {
        case idle
        case waitingForProxy(probes: Int, lastAnswer: String?)
        /// Between `spawnApp` and its outcome; signals that arrive meanwhile are kept, in order.
        case spawning(pendingSignals: [Int32])
        case running(pid: pid_t, stopping: Bool)
        /// A stop signal arrived and is held for the drain delay; the app still serves.
        case holdingStop(pid: pid_t, signal: Int32)
        case notifyingProxy(exitCode: Int32, call: ProxyCall, attempt: Int)
        case finished(exitCode: Int32)
    }

    public let configuration: Configuration
    private(set) var state: State = .idle

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Signals that end the wait for the proxy and, forwarded to the app, start its shutdown
    /// (arming `killAfter`). Other signals during the wait are ignored: a stray SIGHUP or SIGWINCH
    /// must not abort the start (scuttle#34).
    public static let stopSignals: Set<Int32> = [SIGTERM, SIGINT, SIGQUIT]

    public mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.idle, .start):
            return start()

        case (.waitingForProxy(let probes, let lastAnswer), .readinessProbed(let outcome)):
            if outcome == .answered(status: 200) {
                var actions: [Action] = [.log(LogRecord(.info, "proxy is ready", [("probes", "\(probes + 1)")]))]
                if configuration.readyTimeout != nil { actions.append(.cancelTimer(.readyDeadline)) }
                return actions + spawn()
            }
            let answer = outcome.description
            state = .waitingForProxy(probes: probes + 1, lastAnswer: answer)
            var actions: [Action] = []
            if answer != lastAnswer {
                actions.append(.log(LogRecord(.info, "proxy is not ready yet", [("answer", answer)])))
            }
            return actions + [.startTimer(.nextProbe, after: configuration.probeInterval)]

        case (.waitingForProxy, .timerFired(.nextProbe)):
            return [.probeReadiness]

        case (.waitingForProxy(let probes, let lastAnswer), .timerFired(.readyDeadline)):
            let fields = [("probes", "\(probes)"), ("last_answer", lastAnswer ?? "none")]
            if configuration.onReadyTimeout == .start {
                return [.cancelTimer(.nextProbe), .log(LogRecord(.warning, "proxy not ready in time; starting the app anyway", fields))] + spawn()
            }
            return [.cancelTimer(.nextProbe), .log(LogRecord(.error, "proxy not ready in time; not starting the app", fields))]
                + finish(exitCode: SupervisorExit.proxyUnavailable)

        case (.waitingForProxy, .signal(let signal)):
            guard Self.stopSignals.contains(signal) else {
                return [.log(LogRecord(.info, "ignored a signal while waiting for the proxy", [("signal", signalName(signal))]))]
            }
            var actions: [Action] = [.cancelTimer(.nextProbe)]
            if configuration.readyTimeout != nil { actions.append(.cancelTimer(.readyDeadline)) }
            actions.append(.log(LogRecord(.info, "stopped while waiting for the proxy; the app was not started", [("signal", signalName(signal))])))
            return actions + finish(exitCode: 128 + signal)

        case (.spawning(let pending), .signal(let signal)):
            state = .spawning(pendingSignals: pending + [signal])
            return []

        case (.spawning(let pending), .spawned(let pid)):
            state = .running(pid: pid, stopping: false)
            var actions: [Action] = [.log(LogRecord(.info, "app started", [("pid", "\(pid)")]))]
            for signal in pending { actions += forward(signal) }
            return actions

        case (.spawning, .spawnFailed(let code)):
            let exitCode = SupervisorExit.forSpawnError(code)
            return [.log(LogRecord(.error, "cannot start the app", [("error", String(cString: strerror(code))), ("code", "\(exitCode)")]))]
                + finish(exitCode: exitCode)

        case (.running, .signal(let signal)):
            return forward(signal)

        case (.holdingStop(let pid, let held), .timerFired(.drainDelay)):
            state = .running(pid: pid, stopping: true)
            return [.log(LogRecord(.info, "drain delay over; passing the stop signal to the app", [("signal", signalName(held))])),
                    .sendSignal(held, to: destination(pid))]

        case (.holdingStop(let pid, let held), .signal(let signal)) where Self.stopSignals.contains(signal):
            state = .running(pid: pid, stopping: true)
            var actions: [Action] = [.cancelTimer(.drainDelay),
                                     .log(LogRecord(.info, "a second stop signal ends the drain delay", [("signal", signalName(signal))])),
                                     .sendSignal(held, to: destination(pid))]
            if signal != held { actions.append(.sendSignal(signal, to: destination(pid))) }
            return actions

        case (.holdingStop(let pid, _), .signal(let signal)):
            return [.sendSignal(signal, to: destination(pid))]

        case (.running(let pid, _), .timerFired(.killDeadline)), (.holdingStop(let pid, _), .timerFired(.killDeadline)):
            return [.log(LogRecord(.warning, "app still running after the stop deadline; killing it", [("pid", "\(pid)")])),
                    .sendSignal(SIGKILL, to: destination(pid))]

        case (.holdingStop, .appExited(let termination)):
            return [.cancelTimer(.drainDelay)] + appExited(termination, stopping: true)

        case (.running(_, let stopping), .appExited(let termination)):
            return appExited(termination, stopping: stopping)

        case (.notifyingProxy(let exitCode, let call, let attempt), .proxyCalled(let answered, let outcome)) where answered == call:
            return proxyAnswered(call, outcome, exitCode: exitCode, attempt: attempt)

        case (.notifyingProxy(_, let call, _), .timerFired(.proxyRetry)):
            return [.callProxy(call)]

        case (.notifyingProxy, .signal(let signal)):
            return [.log(LogRecord(.info, "ignored a signal: the app has exited and the proxy is being stopped", [("signal", signalName(signal))]))]

        default:
            // Late or stale events (a probe answer after a timeout, a timer already cancelled)
            // change nothing.
            return []
        }
    }

    // MARK: Steps

    private mutating func start() -> [Action] {
        guard configuration.waitsForReadiness else { return spawn() }
        state = .waitingForProxy(probes: 0, lastAnswer: nil)
        var actions: [Action] = [.log(LogRecord(.info, "waiting for the proxy to be ready"))]
        if let timeout = configuration.readyTimeout { actions.append(.startTimer(.readyDeadline, after: timeout)) }
        return actions + [.probeReadiness]
    }

    private mutating func spawn() -> [Action] {
        state = .spawning(pendingSignals: [])
        return [.spawnApp]
    }

    private func destination(_ pid: pid_t) -> SignalDestination {
        configuration.signalsProcessGroup ? .processGroup(pid) : .process(pid)
    }

    /// Passes `signal` to the app. The first stop signal arms `killAfter` and, with a drain
    /// delay, is held for that long first.
    private mutating func forward(_ signal: Int32) -> [Action] {
        guard case .running(let pid, let stopping) = state else { return [] }
        guard Self.stopSignals.contains(signal) && !stopping else { return [.sendSignal(signal, to: destination(pid))] }
        var actions: [Action]
        if let delay = configuration.drainDelay {
            state = .holdingStop(pid: pid, signal: signal)
            actions = [.log(LogRecord(.info, "holding the stop signal: the app keeps serving while the pod's endpoints are removed",
                                      [("signal", signalName(signal)), ("delay", "\(delay)")])),
                       .startTimer(.drainDelay, after: delay)]
        } else {
            state = .running(pid: pid, stopping: true)
            actions = [.sendSignal(signal, to: destination(pid))]
        }
        if let killAfter = configuration.killAfter { actions.append(.startTimer(.killDeadline, after: killAfter)) }
        return actions
    }

    /// The app is gone: the end of the pod (drain and quit the proxy) or a restart beside it.
    private mutating func appExited(_ termination: AppTermination, stopping: Bool) -> [Action] {
        var actions: [Action] = []
        if stopping && configuration.killAfter != nil { actions.append(.cancelTimer(.killDeadline)) }
        let level: LogRecord.Level = termination.exitCode == 0 ? .info : .warning
        actions.append(.log(LogRecord(level, "app exited", [("status", termination.description), ("code", "\(termination.exitCode)")])))
        let podEnds: Bool
        switch configuration.quitOn {
        case .exit: podEnds = true
        case .success: podEnds = stopping || termination.exitCode == 0
        case .stop: podEnds = stopping
        }
        if !podEnds && (configuration.drainsProxy || configuration.quitsProxy) {
            actions.append(.log(LogRecord(.info, "the app exited on its own: leaving the proxy running for its restart")))
            state = .finished(exitCode: termination.exitCode)
            return actions + [.exit(termination.exitCode)]
        }
        return actions + finish(exitCode: termination.exitCode)
    }

    /// The app is gone (or never started): drain and quit the proxy, then exit with `exitCode`.
    private mutating func finish(exitCode: Int32) -> [Action] {
        if configuration.drainsProxy { return askProxy(.drain, exitCode: exitCode) }
        if configuration.quitsProxy { return askProxy(.quit, exitCode: exitCode) }
        state = .finished(exitCode: exitCode)
        return [.exit(exitCode)]
    }

    private mutating func askProxy(_ call: ProxyCall, exitCode: Int32) -> [Action] {
        state = .notifyingProxy(exitCode: exitCode, call: call, attempt: 1)
        return [.callProxy(call)]
    }

    private mutating func proxyAnswered(_ call: ProxyCall, _ outcome: AdminOutcome, exitCode: Int32, attempt: Int) -> [Action] {
        let fields = [("call", call.rawValue), ("answer", outcome.description), ("attempt", "\(attempt)")]
        let log: LogRecord
        switch outcome {
        case .answered(let status) where (200..<300).contains(status):
            log = LogRecord(.info, "proxy accepted the call", fields)
        case .refused:
            // Nothing listens on the admin port: the proxy is already gone, which is the goal.
            log = LogRecord(.info, "proxy admin is not listening; the proxy has already stopped", fields)
        case .answered(500...), .failed:
            if attempt < configuration.proxyCallAttempts {
                state = .notifyingProxy(exitCode: exitCode, call: call, attempt: attempt + 1)
                return [.log(LogRecord(.warning, "proxy call failed; retrying", fields)),
                        .startTimer(.proxyRetry, after: configuration.proxyRetryDelay)]
            }
            log = LogRecord(.error, "proxy call failed; giving up (the proxy may keep the pod running)", fields)
        case .answered, .timedOut:
            // A 4xx will not change on retry; a proxy that does not answer in time is not asked again,
            // so a hung admin endpoint cannot hold the pod.
            log = LogRecord(.error, "proxy call failed; giving up (the proxy may keep the pod running)", fields)
        }
        if call == .drain && configuration.quitsProxy {
            return [.log(log)] + askProxy(.quit, exitCode: exitCode)
        }
        state = .finished(exitCode: exitCode)
        return [.log(log), .exit(exitCode)]
    }
}

/// What an admin endpoint did with one request.
public enum AdminOutcome: Equatable, Sendable, CustomStringConvertible {
    case answered(status: Int)
    /// The connection was refused: nothing listens there.
    case refused
    /// No answer within the request timeout.
    case timedOut
    /// Anything else (reset, closed early, malformed answer), with the reason.
    case failed(String)

    public var description: String {
        switch self {
        case .answered(let status): return "status \(status)"
        case .refused: return "connection refused"
        case .timedOut: return "no answer in time"
        case .failed(let reason): return reason
        }
    }
}
