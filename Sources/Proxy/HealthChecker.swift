import Glibc
import CTandemShim

/// Active health checks, run on the first worker's loop: every interval each endpoint of a
/// cluster with a `healthCheck` gets a TCP connect or an HTTP GET that must answer 2xx.
final class HealthChecker {
    private unowned let worker: Worker
    private let clusters: () -> [ClusterRuntime]
    private var due: [String: Int64] = [:]

    private init(worker: Worker, clusters: @escaping () -> [ClusterRuntime]) {
        self.worker = worker
        self.clusters = clusters
    }

    static func install(on worker: Worker, clusters: @escaping () -> [ClusterRuntime]) {
        let checker = HealthChecker(worker: worker, clusters: clusters)
        worker.reactor.onTick.append { now in checker.run(now: now) }
    }

    private func run(now: Int64) {
        var seen = Set<String>()
        for cluster in clusters() {
            let config = cluster.config
            guard let check = config.healthCheck else { continue }
            for endpoint in config.endpoints {
                let key = "\(cluster.name)|\(endpoint.address)"
                seen.insert(key)
                if let next = due[key], next > now { continue }
                due[key] = now + Int64(check.intervalMilliseconds) * 1_000_000
                HealthProbe.start(endpoint.address, check: check, worker: worker) { [weak cluster] passed in
                    cluster?.healthCheck(endpoint.address, passed: passed)
                }
            }
        }
        due = due.filter { seen.contains($0.key) }
    }
}

/// One check: connect, optionally send a GET, read the status line.
final class HealthProbe: ReactorHandler, Ticking {
    private let fd: Int32
    private let check: ProxyConfig.HealthCheck
    private let address: HostPort
    private unowned let worker: Worker
    private let report: (Bool) -> Void
    private let deadline: Int64
    private var connected = false
    private var response: [UInt8] = []
    private var done = false
    var tickSlot = -1

    private init(fd: Int32, address: HostPort, check: ProxyConfig.HealthCheck, worker: Worker, report: @escaping (Bool) -> Void) {
        self.fd = fd
        self.address = address
        self.check = check
        self.worker = worker
        self.report = report
        deadline = worker.reactor.now + Int64(check.timeoutMilliseconds) * 1_000_000
    }

    static func start(_ address: HostPort, check: ProxyConfig.HealthCheck, worker: Worker, report: @escaping (Bool) -> Void) {
        guard let fd = try? Socket.connect(address) else { return report(false) }
        let probe = HealthProbe(fd: fd, address: address, check: check, worker: worker, report: report)
        worker.reactor.add(fd, events: EPOLLOUT.rawValue, probe)
        worker.reactor.startTicking(probe)
    }

    func handle(events: UInt32) {
        guard !done else { return }
        if !connected {
            guard Socket.pendingError(fd) == 0, events & EPOLLOUT.rawValue != 0 else { return finish(false) }
            connected = true
            guard let path = check.httpPath else { return finish(true) }
            let request = Array("GET \(path) HTTP/1.1\r\nhost: \(address)\r\nuser-agent: tandem-health\r\nconnection: close\r\n\r\n".utf8)
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent == request.count else { return finish(false) }
            worker.reactor.modify(fd, events: EPOLLIN.rawValue)
            return
        }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { return finish(false) }
        response.append(contentsOf: buffer[0..<n])
        guard response.count >= 12 else { return }
        finish(response.starts(with: Array("HTTP/1.".utf8)) && response[9] == UInt8(ascii: "2"))
    }

    func tick(now: Int64) {
        if now > deadline { finish(false) }
    }

    func abort() { finish(false) }

    private func finish(_ passed: Bool) {
        guard !done else { return }
        done = true
        worker.reactor.stopTicking(self)
        worker.reactor.close(fd)
        report(passed)
    }
}
