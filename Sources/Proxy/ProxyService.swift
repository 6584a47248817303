import Glibc
import Synchronization
import Dispatch
import Net
import Telemetry

/// The proxy as a process runs it: data plane, admin on loopback, health port, signals, reloads
/// from the config file, and the way it stops, decided by `ProxyShutdown` (see there for the
/// contract with the app). `tandem proxy` is this plus argument parsing.
public final class ProxyService: Sendable {
    public let settings: ProxySettings
    public let proxy: ProxyServer
    public let admin: ProxyAdmin
    private let write: @Sendable (String) -> Void
    private let level: Logger.Level
    /// `POST /quitquitquit` arrives on an admin thread and wakes the loop through here.
    private let events: Mailbox<ProxyShutdown.Event>

    /// `log` receives finished lines; `settings.logLevel` decides which are sent. `metrics` is
    /// what `/stats/prometheus` shows (the caller may add build information to it).
    public init(settings: ProxySettings, metrics: MetricsRegistry = MetricsRegistry(),
                log: @escaping @Sendable (String) -> Void) throws(ConfigError) {
        guard settings.admin.isLoopback else {
            throw ConfigError("--admin", "the admin port can change the proxy, so it binds loopback only, not \(settings.admin.host)")
        }
        self.settings = settings
        self.write = log
        let level = Logger.Level(name: settings.logLevel) ?? .info
        self.level = level
        proxy = try ProxyServer(config: settings.config, workers: settings.workers, drainTimeout: .seconds(settings.drainSeconds),
                                metrics: metrics, log: { lineLevel, line in if lineLevel >= level { log(line) } })
        let events: Mailbox<ProxyShutdown.Event>
        do { events = try Mailbox() } catch { throw ConfigError("", "cannot start: \(error)") }
        self.events = events
        admin = ProxyAdmin(proxy: proxy) { events.post($0) }
    }

    /// Progress lines (listeners, reloads, drains) are info; failures are errors, always written.
    private func log(_ lineLevel: Logger.Level, _ line: String) {
        if lineLevel >= level { write(line) }
    }

    /// Runs until the shutdown says exit, then returns the exit status. Blocks the calling thread;
    /// call it before any other thread is started (see `SignalChannel`).
    public func run() -> Int32 {
        let descriptorLimit = raiseDescriptorLimit()
        let signals: SignalChannel
        do { signals = try SignalChannel([SIGTERM, SIGINT, SIGHUP]) } catch {
            log(.error, "tandem proxy: \(error)")
            return 1
        }
        do { try proxy.start() } catch {
            log(.error, "tandem proxy: \(error)")
            return 1
        }
        let group: EventLoopGroup
        do { group = try EventLoopGroup(threads: 1) } catch {
            log(.error, "tandem proxy: \(error)")
            return 1
        }
        var servers = [HTTPServer(group: group, configuration: HTTPServerConfiguration(host: settings.admin.host, port: settings.admin.port),
                                  routes: admin.routes)]
        if let health = settings.health {
            servers.append(HTTPServer(group: group, configuration: HTTPServerConfiguration(host: health.host, port: health.port),
                                      routes: admin.healthRoutes))
        }
        for server in servers {
            if let error = blocking({ try await server.start() }) {
                log(.error, "tandem proxy: cannot serve admin on \(server.configuration.host):\(server.configuration.port): \(error)")
                proxy.stop()
                return 1
            }
        }
        for listener in proxy.config.listeners {
            log(.info, "tandem proxy: \(listener.name) \(listener.protocol.rawValue) on \(listener.address.host):\(proxy.port(of: listener.name) ?? 0)")
        }
        log(.info, "tandem proxy: admin on \(settings.admin.host):\(servers[0].port); up to \(descriptorLimit) open descriptors")

        var loop = ShutdownLoop(machine: ProxyShutdown(configuration: settings.shutdown))
        var watched = settings.configPath.map(FileStamp.init)
        var nextFileCheck = NanoTime.now()
        serving: while true {
            var descriptors = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: events.fd, events: Int16(POLLIN), revents: 0)]
            let fileCheck = settings.configPath == nil ? nil : nextFileCheck
            _ = poll(&descriptors, 2, Poll.milliseconds(until: [loop.nextWake, fileCheck].compactMap { $0 }.min()))
            var inputs: [ProxyShutdown.Event] = []
            var reloadNow = false
            for signal in signals.read() {
                if signal == SIGHUP { reloadNow = true } else { inputs.append(.stopSignal(signal)) }
            }
            inputs += events.takeAll()
            inputs += loop.due(activeConnections: { proxy.activeConnections })
            if let path = settings.configPath, let stamp = watched, reloadNow || NanoTime.now() >= nextFileCheck {
                nextFileCheck = .now() + .milliseconds(200)
                let now = FileStamp(path)
                if reloadNow || now != stamp {
                    watched = now
                    reload(path)
                }
            }
            for action in inputs.flatMap({ loop.handle($0) }) {
                if perform(action) { break serving }
            }
        }
        log(.info, "tandem proxy: exiting; \(proxy.activeConnections) connections left")
        proxy.stop()
        for server in servers { _ = blocking { await server.shutdown(gracePeriod: .milliseconds(100)); return () } }
        group.shutdown()
        return 0
    }

    /// Performs one action of the shutdown (timers are the loop's); true for `exit`.
    private func perform(_ action: ProxyShutdown.Action) -> Bool {
        switch action {
        case .failReadiness: admin.failHealthChecks()
        case .endInboundKeepAlive: proxy.endInboundKeepAlive()
        case .drainListeners: proxy.drainListeners(graceful: true)
        case .log(let line): log(.info, "tandem proxy: " + line)
        case .warn(let line): log(.error, "tandem proxy: " + line)
        case .exit: return true
        case .startTimer: break  // kept by the loop
        }
        return false
    }

    private func reload(_ path: String) {
        do {
            let text = try readFile(path)
            try proxy.apply(try ConfigReader.read(text))
            log(.info, "tandem proxy: applied \(path)")
        } catch {
            log(.error, "tandem proxy: kept the running configuration: \(path): \(error)")
        }
    }
}

/// The shutdown machine with its timers and the count of open connections while draining.
private struct ShutdownLoop {
    var machine: ProxyShutdown
    private var timers: [ProxyShutdown.Timer: NanoTime] = [:]
    private var drainingSince: NanoTime?
    /// Connection counts are published every 100 ms: one publication after the drain starts
    /// (idle connections closed by then) before a zero is trusted, then polled at this pace.
    static let firstCount: Duration = .milliseconds(150)
    static let countInterval: Duration = .milliseconds(20)

    init(machine: ProxyShutdown) { self.machine = machine }

    /// When the loop must wake at the latest: the nearest timer, or the next count while draining.
    var nextWake: NanoTime? {
        let count = drainingSince.map { max($0 + Self.firstCount, .now() + Self.countInterval) }
        return [timers.values.min(), count].compactMap { $0 }.min()
    }

    /// Timers that are due, and `.drained` once no connection is left.
    mutating func due(activeConnections: () -> Int) -> [ProxyShutdown.Event] {
        let now = NanoTime.now()
        var events: [ProxyShutdown.Event] = []
        for (timer, deadline) in timers where deadline <= now {
            timers[timer] = nil
            events.append(.timerFired(timer))
        }
        if machine.isDraining, let since = drainingSince, now >= since + Self.firstCount, activeConnections() == 0 {
            events.append(.drained)
        }
        return events
    }

    /// Feeds one event, keeps the timers it starts, and returns its actions for the shell.
    mutating func handle(_ event: ProxyShutdown.Event) -> [ProxyShutdown.Action] {
        let actions = machine.handle(event)
        for action in actions {
            switch action {
            case .startTimer(let timer, let delay): timers[timer] = .now() + delay
            case .drainListeners: drainingSince = .now()
            default: break
            }
        }
        return actions
    }
}

/// A file's modification time and size, to notice edits without inotify.
struct FileStamp: Equatable {
    let seconds: Int
    let nanoseconds: Int
    let size: Int

    init(_ path: String) {
        var info = stat()
        if stat(path, &info) == 0 {
            seconds = info.st_mtim.tv_sec
            nanoseconds = info.st_mtim.tv_nsec
            size = Int(info.st_size)
        } else {
            seconds = -1
            nanoseconds = 0
            size = 0
        }
    }
}

/// The whole file as UTF-8 text.
public func readFile(_ path: String) throws(ConfigError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ConfigError(path, String(cString: strerror(errno))) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Runs async work from synchronous code (the main thread, which owns signals) and waits.
private func blocking(_ body: @escaping @Sendable () async throws -> Void) -> Error? {
    let semaphore = DispatchSemaphore(value: 0)
    let result = Mutex<Error?>(nil)
    Task {
        do { try await body() } catch { result.withLock { $0 = error } }
        semaphore.signal()
    }
    semaphore.wait()
    return result.withLock { $0 }
}
