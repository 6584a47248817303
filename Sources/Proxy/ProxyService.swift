import Glibc
import Synchronization
import Dispatch
import Net
import Telemetry

/// The proxy as a process runs it: data plane, admin on loopback, health port, signals, reloads
/// from the config file, and the SIGTERM drain. `tandem proxy` is this plus argument parsing.
///
/// SIGTERM (or SIGINT): readiness fails first, listeners stop accepting, open connections get
/// `Connection: close` and up to `drainSeconds` to finish, then the process exits 0.
/// `POST /quitquitquit` exits promptly (the app's `tandem supervise` calls it after the app exits).
public final class ProxyService: Sendable {
    public let settings: ProxySettings
    public let proxy: ProxyServer
    public let admin: ProxyAdmin
    private let write: @Sendable (String) -> Void
    private let level: Logger.Level

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
        let flag = QuitFlag()
        admin = ProxyAdmin(proxy: proxy) { flag.set() }
        quitFlag = flag
    }

    private let quitFlag: QuitFlag

    /// Progress lines (listeners, reloads, drains) are info; failures are errors, always written.
    private func log(_ lineLevel: Logger.Level, _ line: String) {
        if lineLevel >= level { write(line) }
    }

    /// Runs until a signal or `/quitquitquit`, then returns the exit status. Blocks the calling
    /// thread, which must be the main thread (signals are taken with sigtimedwait there).
    public func run() -> Int32 {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        // Blocked before any thread starts, so every thread inherits the mask and only
        // sigtimedwait below sees them.
        pthread_sigmask(SIG_BLOCK, &signals, nil)

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
        log(.info, "tandem proxy: admin on \(settings.admin.host):\(servers[0].port)")

        var watched = settings.configPath.map(FileStamp.init)
        var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        while true {
            let received = sigtimedwait(&signals, nil, &timeout)
            if quitFlag.isSet {
                log(.info, "tandem proxy: quitquitquit")
                break
            }
            if received == SIGTERM || received == SIGINT {
                drain()
                break
            }
            if let path = settings.configPath, let stamp = watched {
                let now = FileStamp(path)
                if received == SIGHUP || now != stamp {
                    watched = now
                    reload(path)
                }
            }
        }
        proxy.stop()
        for server in servers { _ = blocking { await server.shutdown(gracePeriod: .milliseconds(100)); return () } }
        group.shutdown()
        return 0
    }

    /// SIGTERM: fail readiness, stop accepting, let open connections finish, bounded.
    func drain() {
        log(.info, "tandem proxy: draining for up to \(settings.drainSeconds)s")
        admin.failHealthChecks()
        proxy.drainListeners(graceful: true)
        let deadline = ContinuousClock.now + .seconds(settings.drainSeconds)
        // Counts are published every 100 ms: wait one publication before trusting a zero.
        var sleep = timespec(tv_sec: 0, tv_nsec: 150_000_000)
        nanosleep(&sleep, nil)
        while ContinuousClock.now < deadline && proxy.activeConnections > 0 {
            var poll = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            nanosleep(&poll, nil)
        }
        log(.info, "tandem proxy: drained, \(proxy.activeConnections) connections left")
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

/// Set from an admin handler thread, read by the main loop.
final class QuitFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
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
