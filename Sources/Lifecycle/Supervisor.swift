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
    /// Which app exits end the pod (see `SupervisorStateMachine.QuitPolicy`).
    public var quitOn: SupervisorStateMachine.QuitPolicy
    public var signalsProcessGroup: Bool
    /// How long a stop signal is held before the app gets it (see `SupervisorStateMachine`).
    public var drainDelay: Duration?
    public var killAfter: Duration?
    /// Bound on each call to the proxy's admin endpoint.
    public var requestTimeout: Duration

    public init(command: [String], readyURL: AdminURL? = nil, readyTimeout: Duration? = nil,
                onReadyTimeout: SupervisorStateMachine.Configuration.OnReadyTimeout = .fail,
                drainURL: AdminURL? = nil, quitURL: AdminURL? = nil, quitOn: SupervisorStateMachine.QuitPolicy = .exit,
                signalsProcessGroup: Bool = false, drainDelay: Duration? = nil,
                killAfter: Duration? = nil, requestTimeout: Duration = .seconds(1)) {
        self.command = command
        self.readyURL = readyURL
        self.readyTimeout = readyTimeout
        self.onReadyTimeout = onReadyTimeout
        self.drainURL = drainURL
        self.quitURL = quitURL
        self.quitOn = quitOn
        self.signalsProcessGroup = signalsProcessGroup
        self.drainDelay = drainDelay
        self.killAfter = killAfter
        self.requestTimeout = requestTimeout
    }

    var machineConfiguration: SupervisorStateMachine.Configuration {
        SupervisorStateMachine.Configuration(
            waitsForReadiness: readyURL != nil, readyTimeout: readyTimeout, onReadyTimeout: onReadyTimeout,
            drainsProxy: drainURL != nil, quitsProxy: quitURL != nil,
            quitOn: quitOn, signalsProcessGroup: signalsProcessGroup, drainDelay: drainDelay, killAfter: killAfter)
    }
}

/// The shell around `SupervisorStateMachine`: one thread sleeping in `poll` on a signalfd (every
/// signal, including SIGCHLD for reaping) and a mailbox (answers from the proxy's admin), with
/// the machine's timers as the poll timeout. It performs the machine's actions and nothing else.
public enum Supervisor {
    /// Runs the app under supervision and returns the status to exit with. Call it before any
    /// other thread is started (see `SignalChannel`).
    public static func run(_ options: SupervisorOptions, log: @escaping LogSink) throws(SystemError) -> Int32 {
        // Every catchable signal, so each one reaches the app (SIGTTIN and SIGTTOU, blocked, cannot
        // stop the supervisor either).
        let signals = try SignalChannel(SignalChannel.catchable)
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
        var loop = SupervisorLoop(options: options, log: log, signals: signals, mailbox: mailbox, admin: admin)
        return loop.run()
    }
}

private struct SupervisorLoop {
    typealias Event = SupervisorStateMachine.Event

    /// Signals the supervisor keeps to itself: SIGCHLD means "reap", the others would stop it.
    static let notForwarded: Set<Int32> = [SIGCHLD, SIGTTIN, SIGTTOU]

    let options: SupervisorOptions
    let log: LogSink
    let signals: SignalChannel
    let mailbox: Mailbox<Event>
    let admin: ProxyAdmin?
    private var machine: SupervisorStateMachine
    private var timers: [SupervisorStateMachine.Timer: NanoTime] = [:]
    private var appPID: pid_t?
    private var childrenExited = false
    private var reapedOrphans = 0

    init(options: SupervisorOptions, log: @escaping LogSink, signals: SignalChannel, mailbox: Mailbox<Event>, admin: ProxyAdmin?) {
        self.options = options
        self.log = log
        self.signals = signals
        self.mailbox = mailbox
        self.admin = admin
        machine = SupervisorStateMachine(configuration: options.machineConfiguration)
    }

    mutating func run() -> Int32 {
        var events: [Event] = [.start]
        while true {
            while !events.isEmpty {
                var followUps: [Event] = []
                for action in machine.handle(events.removeFirst()) {
                    switch perform(action) {
                    case .done: break
                    case .followUp(let event): followUps.append(event)
                    case .exit(let code): return code
                    }
                }
                events.insert(contentsOf: followUps, at: 0)
            }
            events = nextEvents()
        }
    }

    private enum Performed {
        case done
        case followUp(Event)
        case exit(Int32)
    }

    private mutating func perform(_ action: SupervisorStateMachine.Action) -> Performed {
        switch action {
        case .probeReadiness:
            let mailbox = self.mailbox
            admin!.request(.get, options.readyURL!) { mailbox.post(.readinessProbed($0)) }
        case .startTimer(let timer, let delay):
            timers[timer] = .now() + delay
        case .cancelTimer(let timer):
            timers[timer] = nil
        case .spawnApp:
            switch ChildProcess.spawn(options.command, newProcessGroup: options.signalsProcessGroup) {
            case .success(let pid):
                appPID = pid
                return .followUp(.spawned(pid: pid))
            case .failure(let error):
                return .followUp(.spawnFailed(errno: error.code))
            }
        case .sendSignal(let signal, let destination):
            if let error = ChildProcess.send(signal, to: destination) {
                log(LogRecord(.warning, "cannot signal the app", [("error", "\(error)")]))
            }
        case .callProxy(let call):
            let mailbox = self.mailbox
            admin!.request(.post, call == .drain ? options.drainURL! : options.quitURL!) { mailbox.post(.proxyCalled(call, $0)) }
        case .log(let record):
            log(record)
        case .exit(let code):
            if reapedOrphans > 0 {
                log(LogRecord(.info, "reaped orphaned processes", [("count", "\(reapedOrphans)")]))
            }
            return .exit(code)
        }
        return .done
    }

    /// Sleeps until something happens, and returns what did.
    private mutating func nextEvents() -> [Event] {
        var events: [Event] = []
        // Children are reaped only once the signals that arrived with their SIGCHLD have been
        // forwarded: until then the app is a zombie, so its pid cannot have been reused.
        if childrenExited {
            childrenExited = false
            for (pid, status) in ChildProcess.reapExited() {
                if pid == appPID {
                    events.append(.appExited(AppTermination(waitStatus: status)))
                } else {
                    reapedOrphans += 1
                }
            }
            return events
        }
        var descriptors = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: mailbox.fd, events: Int16(POLLIN), revents: 0)]
        _ = poll(&descriptors, 2, Poll.milliseconds(until: timers.values.min()))
        for signal in signals.read() {
            if signal == SIGCHLD {
                childrenExited = true
            } else if !Self.notForwarded.contains(signal) {
                events.append(.signal(signal))
            }
        }
        events += mailbox.takeAll()
        let now = NanoTime.now()
        for (timer, deadline) in timers where deadline <= now {
            timers[timer] = nil
            events.append(.timerFired(timer))
        }
        return events
    }
}
