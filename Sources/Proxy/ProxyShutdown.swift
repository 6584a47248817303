import Glibc

/// Every decision `tandem proxy` makes between a stop request and its exit, with no I/O: the
/// shell feeds it events (a stop signal, `POST /quitquitquit`, a timer, "no connections left")
/// and performs the actions it returns, in order. Tests drive it with events alone.
///
/// The contract with the app beside it, so no request fails while a pod goes away:
/// - A stop signal fails readiness at once. From then on inbound responses say
///   `Connection: close`, so keep-alive clients reconnect, and reach other pods as soon as the
///   endpoint removal reaches them; every listener still accepts, and outbound calls carry on.
/// - Standalone or native sidecar: the kubelet sends SIGTERM only after the app has exited (and
///   after the preStop `sleep`), so after `drainDelay` (zero there) the proxy drains.
/// - Legacy sidecar (`waitsForApp`): the kubelet signals proxy and app at once. The app's
///   `tandem supervise` holds the app's signal for the drain delay and posts `/quitquitquit` once
///   the app has exited; until then the proxy serves as before, so the app's own outbound calls
///   during its shutdown and the inbound requests that arrive while endpoints are removed work.
/// - Draining: listeners stop accepting, open connections finish their current request with
///   `Connection: close`, idle ones are closed, and the proxy exits once none is left.
/// - Whatever happens, it exits `drainDelay + drainTime` after the stop signal (`drainTime` after
///   `/quitquitquit` when no signal came, as in a Job).
public struct ProxyShutdown: Sendable {
    public struct Configuration: Equatable, Sendable {
        /// Legacy sidecar: serve until `/quitquitquit` says the app has exited.
        public var waitsForApp: Bool
        /// How long after a stop signal everything is still accepted: the time endpoint removal
        /// takes to reach every client.
        public var drainDelay: Duration
        /// Bound on the rest: waiting for the app and draining open connections.
        public var drainTime: Duration

        public init(waitsForApp: Bool = false, drainDelay: Duration = .zero, drainTime: Duration = .seconds(5)) {
            self.waitsForApp = waitsForApp
            self.drainDelay = drainDelay
            self.drainTime = drainTime
        }
    }

    public enum Timer: Hashable, Sendable {
        case delayOver, deadline
    }

    public enum Event: Equatable, Sendable {
        /// SIGTERM or SIGINT.
        case stopSignal(Int32)
        /// `POST /quitquitquit`: the app has exited (or the operator wants the proxy gone).
        case quitRequested
        /// `POST /quitquitquit?app=NAME&apps=A,B`: one of several wrapped app containers has
        /// exited; the proxy quits once every one of `apps` has said so, since the others may
        /// still be calling out through it.
        case appExited(String, apps: Set<String>)
        case timerFired(Timer)
        /// No client connection is open any more (reported while draining).
        case drained
    }

    public enum Action: Equatable, Sendable {
        case failReadiness
        /// Inbound responses say `Connection: close`; listeners keep accepting.
        case endInboundKeepAlive
        /// Every listener stops accepting; open connections finish their current request.
        case drainListeners
        case startTimer(Timer, after: Duration)
        /// Progress, written at log level info.
        case log(String)
        /// Something went wrong, written at any log level.
        case warn(String)
        case exit
    }

    enum State: Equatable, Sendable {
        case serving
        /// Stop signal received, still accepting until the delay is over.
        case delaying
        /// Stop signal received (legacy), still accepting until `/quitquitquit`.
        case awaitingApp
        case draining
        case finished
    }

    public let configuration: Configuration
    private(set) var state = State.serving
    /// App containers that have posted `/quitquitquit?app=…`.
    private var exitedApps: Set<String> = []

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// True once connections should be counted for `.drained`.
    public var isDraining: Bool { state == .draining }

    public mutating func handle(_ event: Event) -> [Action] {
        if case .appExited(let app, let apps) = event {
            exitedApps.insert(app)
            let waiting = apps.subtracting(exitedApps)
            guard waiting.isEmpty else {
                return state == .serving || state == .delaying || state == .awaitingApp
                    ? [.log("app \(app) has exited; still serving for \(waiting.sorted().joined(separator: ", "))")] : []
            }
            return handle(.quitRequested)
        }
        switch (state, event) {
        case (.serving, .stopSignal(let signal)):
            let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
            let delay = configuration.drainDelay
            var actions: [Action] = [.failReadiness, .endInboundKeepAlive,
                                     .startTimer(.deadline, after: delay + configuration.drainTime)]
            if configuration.waitsForApp {
                state = .awaitingApp
                actions.append(.log("\(name): readiness fails; serving until the app has exited (POST /quitquitquit), "
                    + "at most \(seconds(delay + configuration.drainTime))"))
                return actions
            }
            if delay > .zero {
                state = .delaying
                actions.append(.log("\(name): readiness fails; serving for \(seconds(delay)) while endpoint removal propagates"))
                return actions + [.startTimer(.delayOver, after: delay)]
            }
            return actions + [.log("\(name): readiness fails")] + drain()

        case (.serving, .quitRequested):
            return [.log("quitquitquit"), .failReadiness, .startTimer(.deadline, after: configuration.drainTime)] + drain()

        case (.delaying, .timerFired(.delayOver)):
            return drain()

        case (.delaying, .quitRequested), (.awaitingApp, .quitRequested):
            return [.log("quitquitquit: the app has exited")] + drain()

        case (.awaitingApp, .timerFired(.deadline)):
            state = .finished
            return [.warn("drain deadline reached before the app exited (no POST /quitquitquit came)"), .exit]

        case (.delaying, .timerFired(.deadline)), (.draining, .timerFired(.deadline)):
            state = .finished
            return [.warn("drain deadline reached"), .exit]

        case (.draining, .drained):
            state = .finished
            return [.exit]

        case (.delaying, .stopSignal), (.awaitingApp, .stopSignal), (.draining, .stopSignal):
            return [.log("already stopping; ignored a repeated stop signal")]

        default:
            // A repeated quit while draining, a timer that no longer matters: nothing changes.
            return []
        }
    }

    private mutating func drain() -> [Action] {
        state = .draining
        return [.log("draining: listeners stop accepting; open connections finish, at most until the deadline"), .drainListeners]
    }

    private func seconds(_ duration: Duration) -> String {
        let milliseconds = duration.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
