import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Lifecycle
@testable import Net

/// A stand-in for the proxy's Envoy-style admin on a loopback port 0 listener, whose readiness
/// and quit behaviour the test controls, and which records every call with its arrival time.
final class FakeAdmin: Sendable {
    enum QuitBehaviour: Sendable {
        /// 200.
        case ok
        /// 404, like Linkerd's disabled /shutdown.
        case notFound
        /// Sends the head and never finishes: a hung proxy.
        case hang
        /// 200, then stops listening, as a proxy that exits.
        case exit
    }

    struct Call: Sendable {
        let path: String
        let at: NanoTime
        /// Whether the app's marker file existed when the call arrived (the app writes it just before it exits).
        let appHadExited: Bool
    }

    struct State: Sendable {
        var ready = false
        var readyHangs = false
        var quitBehaviour = QuitBehaviour.ok
        var calls: [Call] = []
        var readyPolls = 0
        var firstReadyAnswer: NanoTime?
        /// Sent SIGTERM when /ready first answers 200: a signal at the moment the app is spawned.
        var terminateOnReady: pid_t?
    }

    /// What the route handlers share with the test.
    private final class Shared: Sendable {
        let state = Mutex(State())
        let server = Mutex<HTTPServer?>(nil)
    }

    private let shared = Shared()
    private let group: EventLoopGroup
    let port: Int

    init(marker: String, ready: Bool = false, quit: QuitBehaviour = .ok) async throws {
        let shared = self.shared
        shared.state.withLock { $0.ready = ready; $0.quitBehaviour = quit }
        group = try EventLoopGroup(threads: 1)
        var routes = HTTPRoutes()
        let record: @Sendable (String) -> Void = { path in
            let call = Call(path: path, at: .now(), appHadExited: access(marker, F_OK) == 0)
            shared.state.withLock { $0.calls.append(call) }
        }
        routes.add(.get, "/ready") { _ in
            let (ready, hangs) = shared.state.withLock { state -> (Bool, Bool) in
                state.readyPolls += 1
                if state.ready && !state.readyHangs && state.firstReadyAnswer == nil {
                    state.firstReadyAnswer = .now()
                    if let pid = state.terminateOnReady { kill(pid, SIGTERM) }
                }
                return (state.ready, state.readyHangs)
            }
            if hangs { return HTTPResponse(status: 200, stream: { _ in }) }
            return .text(ready ? 200 : 503, ready ? "LIVE\n" : "PRE_INITIALIZING\n")
        }
        routes.add(.post, "/quitquitquit") { _ in
            record("/quitquitquit")
            switch shared.state.withLock({ $0.quitBehaviour }) {
            case .ok: return .text(200, "OK\n")
            case .notFound: return .text(404, "quit endpoint is not enabled\n")
            case .hang: return HTTPResponse(status: 200, stream: { _ in })
            case .exit:
                let server = shared.server.withLock { $0 }
                Task { await server?.shutdown(gracePeriod: .milliseconds(50)) }
                return .text(200, "OK\n")
            }
        }
        for path in ["/drain_listeners", "/started", "/outbound", "/inbound"] {
            routes.add(path == "/drain_listeners" ? .post : .get, path) { _ in
                record(path)
                return .text(200, "OK\n")
            }
        }
        let server = HTTPServer(group: group, configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0), routes: routes)
        try await server.start()
        port = server.port
        shared.server.withLock { $0 = server }
    }

    func withState<T>(_ body: (inout State) -> T) -> T { shared.state.withLock { body(&$0) } }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func setReady(_ ready: Bool) { withState { $0.ready = ready } }

    var readyPolls: Int { withState { $0.readyPolls } }

    func calls(_ path: String) -> [Call] { withState { $0.calls.filter { $0.path == path } } }

    var paths: [String] { withState { $0.calls.map(\.path) } }

    func stop() async {
        await shared.server.withLock { $0 }?.shutdown(gracePeriod: .milliseconds(50))
        group.shutdown()
    }
}

/// The real `tandem` binary (built beside the tests), started with posix_spawn like the
/// supervisor starts apps, with its standard error in a file.
final class TandemRun {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tandem").path

    let pid: pid_t
    let logPath: String
    private var termination: AppTermination?

    /// `environment` is added to the test's own.
    init(_ arguments: [String], environment: [String: String] = [:], in folder: TestFolder) throws {
        logPath = folder.path("tandem-\(UUID().uuidString).log")
        // sh only sets up the redirection (and env the environment), then becomes tandem (same pid).
        let assignments = environment.sorted { $0.key < $1.key }.map { "'\($0.key)=\($0.value)'" }.joined(separator: " ")
        let command = ["/bin/sh", "-c", "exec env \(assignments) \"$0\" \"$@\" 2>'\(logPath)' >'\(logPath).out' </dev/null", Self.binary]
            + arguments
        switch ChildProcess.spawn(command, newProcessGroup: false) {
        case .success(let pid): self.pid = pid
        case .failure(let error): throw SystemError("spawn tandem", code: error.code)
        }
    }

    deinit {
        if termination == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for tandem to exit, up to `timeout`; nil if it is still running then.
    func wait(timeout: Duration = .seconds(10)) async -> AppTermination? {
        if let termination { return termination }
        _ = await eventually(timeout: timeout) {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return false }
            termination = AppTermination(waitStatus: status)
            return true
        }
        return termination
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var output: String { (try? String(contentsOfFile: logPath + ".out", encoding: .utf8)) ?? "" }
}

/// A temporary folder removed when the test ends.
final class TestFolder: Sendable {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-lifecycle-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func path(_ name: String) -> String { root + "/" + name }

    func exists(_ name: String) -> Bool { access(path(name), F_OK) == 0 }

    func read(_ name: String) -> String { (try? String(contentsOfFile: path(name), encoding: .utf8)) ?? "" }
}

func milliseconds(from start: NanoTime, to end: NanoTime) -> Double {
    Double(end.nanoseconds - start.nanoseconds) / 1_000_000
}

/// The children of `parent` as (pid, state letter) from /proc, zombies included.
func children(of parent: pid_t) -> [(pid: pid_t, state: Character)] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { entry -> (pid_t, Character)? in
        guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": state, ppid, ...
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let ppid = pid_t(fields[1]), ppid == parent, let state = fields[0].first else { return nil }
        return (pid, state)
    }
}

/// True while `pid` exists and is not a zombie.
func isRunning(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}
