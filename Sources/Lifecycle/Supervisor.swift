import CTandemShim
import Glibc
import Net

/// What `tandem supervise` was asked to do.
public struct SupervisorOptions: Sendable {
    /// The app's command and arguments (looked up in PATH).
    public var command: [String]
    /// Wait until this answers 200 before starting the app.
    public var readyURL: AdminURL?
    /// nil waits for as long as it takes.
    public var readyTimeout: Duration?
    public var onReadyTimeout: SupervisorStateMachine.Configuration.OnReadyTimeout
    /// POSTed after the app has exited, before `quitURL`.
    public var drainURL: AdminURL?
    /// POSTed after the app has exited, so the proxy stops and the pod can complete.
    public var quitURL: AdminURL?
    public var signalsProcessGroup: Bool
    public var killAfter: Duration?
    /// Bound on each call to the proxy's admin endpoint.
    public var requestTimeout: Duration

    public init(command: [String], readyURL: AdminURL? = nil, readyTimeout: Duration? = nil,
                onReadyTimeout: SupervisorStateMachine.Configuration.OnReadyTimeout = .fail,
                drainURL: AdminURL? = nil, quitURL: AdminURL? = nil, signalsProcessGroup: Bool = false,
                killAfter: Duration? = nil, requestTimeout: Duration = .seconds(1)) {
        self.command = command
        self.readyURL = readyURL
        self.readyTimeout = readyTimeout
        self.onReadyTimeout = onReadyTimeout
        self.drainURL = drainURL
        self.quitURL = quitURL
        self.signalsProcessGroup = signalsProcessGroup
        self.killAfter = killAfter
        self.requestTimeout = requestTimeout
    }

    var machineConfiguration: SupervisorStateMachine.Configuration {
        SupervisorStateMachine.Configuration(
            waitsForReadiness: readyURL != nil, readyTimeout: readyTimeout, onReadyTimeout: onReadyTimeout,
            drainsProxy: drainURL != nil, quitsProxy: quitURL != nil,
            signalsProcessGroup: signalsProcessGroup, killAfter: killAfter)
    }
}

/// The shell around `SupervisorStateMachine`: one thread sleeping in `poll` on a signalfd (every
/// signal, including SIGCHLD for reaping) and a mailbox (answers from the proxy's admin), with
/// the machine's timers as the poll timeout. It performs the machine's actions and nothing else.
public enum Supervisor {
    /// Runs the app under supervision and returns the status to exit with. Call it before any
    /// other thread is started (see `SignalChannel`).
    public static func run(_ options: SupervisorOptions, log: @escaping LogSink) throws(SystemError) -> Int32 {
        let signals = try SignalChannel()
        if getpid() != 1 && tandem_set_child_subreaper() != 0 {
            log(LogRecord(.warning, "cannot become a child subreaper; orphaned processes will not be reaped",
                          [("error", String(cString: strerror(errno)))]))
        }
        let mailbox = try Mailbox<SupervisorStateMachine.Event>()
        // The HTTP client's loop thread is started after the signals are blocked, so it inherits the mask.
        let needsProxy = options.readyURL != nil || options.drainURL != nil || options.quitURL != nil
        let group = needsProxy ? try EventLoopGroup(threads: 1) : nil
        let admin = group.map { ProxyAdmin(loop: $0.loops[0], requestTimeout: options.requestTimeout) }
        // Net's pooled connections hold their client unowned: stop the loop before the client goes.
        defer { withExtendedLifetime(admin) { group?.shutdown() } }

        var machine = SupervisorStateMachine(configuration: options.machineConfiguration)
        var timers: [SupervisorStateMachine.Timer: NanoTime] = [:]
        var appPID: pid_t?
        var reapedOrphans = 0
        var events: [SupervisorStateMachine.Event] = [.start]

        while true {
            while !events.isEmpty {
                let event = events.removeFirst()
                var followUps: [SupervisorStateMachine.Event] = []
                for action in machine.handle(event) {
                    switch action {
                    case .probeReadiness:
                        admin!.request(.get, options.readyURL!) { mailbox.post(.readinessProbed($0)) }
                    case .startTimer(let timer, let delay):
                        timers[timer] = .now() + delay
                    case .cancelTimer(let timer):
                        timers[timer] = nil
                    case .spawnApp:
                        switch ChildProcess.spawn(options.command, newProcessGroup: options.signalsProcessGroup) {
                        case .success(let pid):
                            appPID = pid
                            followUps.append(.spawned(pid: pid))
                        case .failure(let error):
                            followUps.append(.spawnFailed(errno: error.code))
                        }
                    case .sendSignal(let signal, let destination):
                        if let error = ChildProcess.send(signal, to: destination) {
                            log(LogRecord(.warning, "cannot signal the app", [("error", "\(error)")]))
                        }
                    case .callProxy(let call):
                        let url = call == .drain ? options.drainURL! : options.quitURL!
                        admin!.request(.post, url) { mailbox.post(.proxyCalled(call, $0)) }
                    case .log(let record):
                        log(record)
                    case .exit(let code):
                        if reapedOrphans > 0 {
                            log(LogRecord(.info, "reaped orphaned processes", [("count", "\(reapedOrphans)")]))
                        }
                        return code
                    }
                }
                events.insert(contentsOf: followUps, at: 0)
            }

            var descriptors = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: mailbox.fd, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 2, Poll.milliseconds(until: timers.values.min()))

            for signal in signals.read() {
                if signal == SIGCHLD {
                    for (pid, status) in ChildProcess.reapExited() {
                        if pid == appPID {
                            events.append(.appExited(AppTermination(waitStatus: status)))
                        } else {
                            reapedOrphans += 1
                        }
                    }
                } else if !SignalChannel.notForwarded.contains(signal) {
                    events.append(.signal(signal))
                }
            }
            events += mailbox.takeAll()
            let now = NanoTime.now()
            for (timer, deadline) in timers where deadline <= now {
                timers[timer] = nil
                events.append(.timerFired(timer))
            }
        }
    }
}
