import Foundation
import Glibc
import Testing
import TestSupport
@testable import Lifecycle
import Net

/// `tandem supervise` as a real process with real signals, against a fake proxy admin, following
/// the timelines of research/lifecycle.md. The app is a `/bin/sh` script that reports to the
/// fake admin with curl (`/started`, `/outbound`) and touches a marker file just before it exits,
/// so the admin can record whether the app was gone when the proxy was told to drain or quit.
@Suite struct SuperviseTimelineTests {
    let folder: TestFolder
    let marker: String

    init() throws {
        folder = try TestFolder()
        marker = folder.path("app-exited")
    }

    func curl(_ admin: FakeAdmin, _ path: String) -> String {
        "curl -s -o /dev/null \(admin.url(path))"
    }

    /// `supervise` with the legacy-mode flags the injector writes, plus `extra`, around `script`.
    func supervise(_ admin: FakeAdmin, _ extra: [String] = [], drain: Bool = false, script: String) throws -> TandemRun {
        var arguments = ["supervise", "--ready-url", admin.url("/ready"), "--quit-url", admin.url("/quitquitquit")]
        if drain { arguments += ["--drain-url", admin.url("/drain_listeners?graceful")] }
        return try TandemRun(arguments + extra + ["--", "/bin/sh", "-c", script], in: folder)
    }

    // MARK: A. Startup gating

    @Test func a1SlowProxyTheAppStartsRightAfterTheFirst200() async throws {
        let admin = try await FakeAdmin(marker: marker)
        let run = try supervise(admin, script: curl(admin, "/started"))
        #expect(await eventually { admin.readyPolls >= 5 })
        #expect(admin.calls("/started").isEmpty)
        admin.setReady(true)
        #expect(await run.wait() == .exited(code: 0))
        let started = try #require(admin.calls("/started").first)
        let firstReady = try #require(admin.withState { $0.firstReadyAnswer })
        #expect(started.at > firstReady)
        // Right after: the app (sh, then curl) reaches the admin within seconds even on a loaded
        // machine, not after another poll round or the 120 s ready timeout. Hack/bench/scaledown
        // measures the real delay (7 ms p50).
        #expect(milliseconds(from: firstReady, to: started.at) < 5000)
        #expect(run.log.contains(#"msg="proxy is not ready yet" answer="status 503""#))
        await admin.stop()
    }

    @Test func a2HungReadyEndpointCostsOneRequestTimeoutThenPollingGoesOn() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        admin.withState { $0.readyHangs = true }
        let run = try supervise(admin, script: curl(admin, "/started"))
        #expect(await eventually { admin.readyPolls >= 1 })
        let recovered = NanoTime.now()
        admin.withState { $0.readyHangs = false }
        #expect(await run.wait() == .exited(code: 0))
        let started = try #require(admin.calls("/started").first)
        // The hung probe times out after 1 s; the next one sees the proxy ready.
        #expect(milliseconds(from: recovered, to: started.at) < 3000)
        #expect(run.log.contains(#"answer="no answer in time""#))
        await admin.stop()
    }

    @Test func a3NeverReadyFatalTimeoutExits69WithoutTheAppAndQuitsTheProxy() async throws {
        let admin = try await FakeAdmin(marker: marker)
        let run = try supervise(admin, ["--ready-timeout", "0.3"], script: curl(admin, "/started"))
        #expect(await run.wait() == .exited(code: 69))
        #expect(admin.calls("/started").isEmpty)
        #expect(admin.calls("/quitquitquit").count == 1)
        #expect(run.log.contains("proxy not ready in time; not starting the app"))
        await admin.stop()
    }

    @Test func a3TheReadinessDeadlineDoesNotWaitForAHungProbe() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        admin.withState { $0.readyHangs = true }
        let run = try supervise(admin, ["--ready-timeout", "0.2"], script: curl(admin, "/started"))
        #expect(await run.wait() == .exited(code: 69))
        // The probe in flight (1 s request timeout) had not answered when the 0.2 s deadline ended the wait.
        #expect(run.log.contains("probes=0 last_answer=none"))
        #expect(admin.calls("/started").isEmpty)
        await admin.stop()
    }

    @Test func a4NeverReadyNonFatalTimeoutStartsTheAppAnyway() async throws {
        let admin = try await FakeAdmin(marker: marker)
        let run = try supervise(admin, ["--ready-timeout", "0.2", "--on-timeout", "start"], script: curl(admin, "/started"))
        #expect(await run.wait() == .exited(code: 0))
        #expect(admin.calls("/started").count == 1)
        #expect(run.log.contains(#"level=warning msg="proxy not ready in time; starting the app anyway""#))
        await admin.stop()
    }

    @Test func a6SigtermWhileWaitingExits143PromptlyAndQuitsTheProxy() async throws {
        let admin = try await FakeAdmin(marker: marker)
        let run = try supervise(admin, script: curl(admin, "/started"))
        #expect(await eventually { admin.readyPolls >= 1 })
        let signalled = NanoTime.now()
        run.signal(SIGTERM)
        #expect(await run.wait() == .exited(code: 143))
        // Promptly: not after the 120 s ready timeout. The bound leaves a loaded machine room.
        #expect(milliseconds(from: signalled, to: .now()) < 10_000)
        #expect(admin.calls("/started").isEmpty)
        #expect(admin.calls("/quitquitquit").count == 1)
        await admin.stop()
    }

    @Test func a7SpuriousSignalsWhileWaitingNeitherAbortNorQuit() async throws {
        let admin = try await FakeAdmin(marker: marker)
        let run = try supervise(admin, script: curl(admin, "/started"))
        #expect(await eventually { admin.readyPolls >= 1 })
        for signal in [SIGHUP, SIGWINCH, SIGURG, SIGUSR1, SIGCHLD] {
            run.signal(signal)
            // One at a time: the kernel keeps only one pending signal of each kind.
            if signal != SIGCHLD {
                #expect(await eventually { run.log.contains(#"msg="ignored a signal while waiting for the proxy" signal=\#(signalName(signal))"#) })
            }
        }
        #expect(admin.calls("/quitquitquit").isEmpty)
        admin.setReady(true)
        #expect(await run.wait() == .exited(code: 0))
        #expect(admin.calls("/started").count == 1)
        await admin.stop()
    }

    // MARK: B. Termination

    @Test func b1SigtermTheAppFinishesItsWorkAndCallsOutBeforeTheProxyIsDrainedAndQuit() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let script = """
        trap 'sleep 0.2; \(curl(admin, "/outbound")); touch \(marker); exit 0' TERM
        \(curl(admin, "/started"))
        while :; do sleep 1 & wait $!; done
        """
        let run = try supervise(admin, drain: true, script: script)
        #expect(await eventually { !admin.calls("/started").isEmpty })
        run.signal(SIGTERM)
        #expect(await run.wait() == .exited(code: 0))
        #expect(admin.paths == ["/started", "/outbound", "/drain_listeners", "/quitquitquit"])
        let outbound = try #require(admin.calls("/outbound").first)
        let drain = try #require(admin.calls("/drain_listeners").first)
        let quit = try #require(admin.calls("/quitquitquit").first)
        #expect(!outbound.appHadExited)
        #expect(drain.appHadExited && quit.appHadExited)
        #expect(drain.at < quit.at)
        await admin.stop()
    }

    @Test func b2DrainDelayHoldsSigtermWhileTheAppKeepsServing() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let script = """
        trap '\(curl(admin, "/outbound")); touch \(marker); exit 0' TERM
        \(curl(admin, "/started"))
        while :; do sleep 0.05; \(curl(admin, "/inbound")); done
        """
        let run = try supervise(admin, ["--drain-delay", "0.5"], script: script)
        #expect(await eventually { !admin.calls("/started").isEmpty })
        let signalled = NanoTime.now()
        run.signal(SIGTERM)
        #expect(await run.wait() == .exited(code: 0))
        let stopped = try #require(admin.calls("/outbound").first)
        #expect(milliseconds(from: signalled, to: stopped.at) >= 500, "the app got SIGTERM only after the delay")
        #expect(admin.calls("/inbound").contains { $0.at > signalled && $0.at < stopped.at }, "and worked on meanwhile")
        #expect(admin.calls("/quitquitquit").count == 1)
        #expect(run.log.contains(#"msg="holding the stop signal: the app keeps serving while the pod's endpoints are removed" signal=SIGTERM"#))
        await admin.stop()
    }

    @Test func b4AppIgnoringSigtermIsKilledAfterKillAfterAndTheProxyStillQuits() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let script = """
        trap '' TERM
        \(curl(admin, "/started"))
        while :; do sleep 1; done
        """
        let run = try supervise(admin, ["--kill-after", "0.3", "--process-group"], script: script)
        #expect(await eventually { !admin.calls("/started").isEmpty })
        let signalled = NanoTime.now()
        run.signal(SIGTERM)
        #expect(await run.wait() == .exited(code: 137))
        let elapsed = milliseconds(from: signalled, to: .now())
        // Killed after --kill-after, not left running: the upper bound allows a loaded machine.
        #expect(elapsed >= 300 && elapsed < 10_000)
        #expect(admin.calls("/quitquitquit").count == 1)
        #expect(run.log.contains("app still running after the stop deadline; killing it"))
        await admin.stop()
    }

    @Test func b8ProxyDyingWhileTheAppDrainsNeitherHangsNorChangesTheStatus() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let script = """
        trap 'while [ ! -e \(folder.path("proxy-gone")) ]; do sleep 0.01; done; exit 4' TERM
        \(curl(admin, "/started"))
        while :; do sleep 1 & wait $!; done
        """
        let run = try supervise(admin, drain: true, script: script)
        #expect(await eventually { !admin.calls("/started").isEmpty })
        run.signal(SIGTERM)
        await admin.stop()
        _ = FileManager.default.createFile(atPath: folder.path("proxy-gone"), contents: nil)
        #expect(await run.wait() == .exited(code: 4))
        #expect(run.log.contains(#"msg="proxy admin is not listening; the proxy has already stopped" call=drain"#))
        #expect(run.log.contains(#"msg="proxy admin is not listening; the proxy has already stopped" call=quit"#))
    }

    @Test func b9RepeatedSignalsReachTheAppEachTimeAndTheProxyIsDrainedOnce() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let signals = folder.path("signals")
        let script = """
        trap 'echo TERM >> \(signals)' TERM
        trap 'echo INT >> \(signals)' INT
        \(curl(admin, "/started"))
        while [ "$(cat \(signals) 2>/dev/null | wc -l)" -lt 3 ]; do sleep 1 & wait $!; done
        touch \(marker)
        """
        let run = try supervise(admin, drain: true, script: script)
        #expect(await eventually { !admin.calls("/started").isEmpty })
        for (index, signal) in [SIGTERM, SIGTERM, SIGINT].enumerated() {
            run.signal(signal)
            #expect(await eventually { folder.read("signals").split(separator: "\n").count == index + 1 })
        }
        #expect(await run.wait() == .exited(code: 0))
        #expect(folder.read("signals") == "TERM\nTERM\nINT\n")
        #expect(admin.calls("/drain_listeners").count == 1)
        #expect(admin.calls("/quitquitquit").count == 1)
        await admin.stop()
    }

    // MARK: C. Jobs

    @Test(arguments: [("exit 0", Int32(0)), ("exit 3", 3), ("kill -KILL $$", 137)])
    func c1c2c3JobEndingOnItsOwnQuitsTheProxyAndExitsWithTheAppsStatus(ending: String, code: Int32) async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let run = try supervise(admin, script: "touch \(marker); \(ending)")
        #expect(await run.wait() == .exited(code: code))
        let quit = try #require(admin.calls("/quitquitquit").first)
        #expect(quit.appHadExited)
        #expect(admin.calls("/quitquitquit").count == 1)
        await admin.stop()
    }

    @Test func c4QuitEndpointDownDoesNotChangeTheStatusOrHang() async throws {
        let started = NanoTime.now()
        let run = try TandemRun(["supervise", "--quit-url", "http://127.0.0.1:1/quitquitquit", "--", "/bin/sh", "-c", "exit 3"], in: folder)
        #expect(await run.wait() == .exited(code: 3))
        // What matters is one attempt and no retry loop (the log lines below); the time bound only
        // catches a hang, and is loose because a loaded machine takes seconds to start a process.
        #expect(milliseconds(from: started, to: .now()) < 30_000)
        #expect(run.log.contains(#"msg="proxy admin is not listening; the proxy has already stopped" call=quit answer="connection refused" attempt=1"#))
        #expect(!run.log.contains("retrying"))
    }

    @Test func c5Quit404KeepsTheStatusAndIsLoggedAsAnError() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true, quit: .notFound)
        let run = try supervise(admin, script: "exit 3")
        #expect(await run.wait() == .exited(code: 3))
        #expect(admin.calls("/quitquitquit").count == 1)
        #expect(run.log.contains(#"level=error msg="proxy call failed; giving up (the proxy may keep the pod running)" call=quit answer="status 404""#))
        await admin.stop()
    }

    @Test func slowQuitEndpointCostsOneRequestTimeoutAtMost() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true, quit: .hang)
        let run = try supervise(admin, script: "exit 5")
        #expect(await run.wait() == .exited(code: 5))
        let exited = NanoTime.now()
        let quit = try #require(admin.calls("/quitquitquit").first)
        // Supervise gave up on its own 1 s request timeout (the log says so below); the bound
        // only says it did not hang, with room for a test process starved on a loaded machine.
        #expect(milliseconds(from: quit.at, to: exited) < 10_000)
        #expect(admin.calls("/quitquitquit").count == 1)
        #expect(run.log.contains(#"answer="no answer in time""#))
        await admin.stop()
    }

    // MARK: D. PID-1 duties

    @Test func d1OrphanedGrandchildrenAreReapedBySubreaper() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let script = """
        trap 'exit 0' TERM
        for i in $(seq 50); do (sleep 0.01 &); done
        \(curl(admin, "/started"))
        while :; do sleep 1 & wait $!; done
        """
        let run = try supervise(admin, script: script)
        #expect(await eventually { !admin.calls("/started").isEmpty })
        // Every orphan was reparented to the supervisor and collected: only the app is left.
        #expect(await eventually { children(of: run.pid).count == 1 })
        #expect(children(of: run.pid).allSatisfy { $0.state != "Z" })
        run.signal(SIGTERM)
        #expect(await run.wait() == .exited(code: 0))
        #expect(run.log.contains(#"msg="reaped orphaned processes" count=50"#))
        #expect(!run.log.contains("subreaper"))
        await admin.stop()
    }

    @Test(arguments: [true, false])
    func d2ProcessGroupModeStopsTheWholeGroup(group: Bool) async throws {
        let script = "sleep 100 & echo $! > \(folder.path("sleep.pid")); wait"
        let run = try TandemRun(["supervise"] + (group ? ["--process-group"] : []) + ["--", "/bin/sh", "-c", script], in: folder)
        #expect(await eventually { !folder.read("sleep.pid").isEmpty })
        let sleeper = try #require(pid_t(folder.read("sleep.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        run.signal(SIGTERM)
        #expect(await run.wait() == .exited(code: 143))
        if group {
            #expect(await eventually { !isRunning(sleeper) })
        } else {
            // Documented behaviour: only sh gets SIGTERM; its child keeps running (and is killed here).
            #expect(isRunning(sleeper))
            kill(sleeper, SIGKILL)
        }
    }

    static let exitTable: [(String, Int32)] = [
        ("exit 0", 0), ("exit 1", 1), ("exit 2", 2), ("exit 255", 255),
        ("kill -TERM $$", 143), ("kill -KILL $$", 137), ("kill -SEGV $$", 139),
    ]

    @Test(arguments: exitTable)
    func d3ExitCodeTable(script: String, code: Int32) async throws {
        let run = try TandemRun(["supervise", "--", "/bin/sh", "-c", script], in: folder)
        #expect(await run.wait() == .exited(code: code))
    }

    @Test func d3MissingCommandIs127AndNonExecutableIs126() async throws {
        let missing = try TandemRun(["supervise", "--", "/no/such/command"], in: folder)
        #expect(await missing.wait() == .exited(code: 127))
        #expect(missing.log.contains(#"msg="cannot start the app" error="No such file or directory" code=127"#))
        _ = FileManager.default.createFile(atPath: folder.path("data.txt"), contents: Data("not a program".utf8))
        let notExecutable = try TandemRun(["supervise", "--", folder.path("data.txt")], in: folder)
        #expect(await notExecutable.wait() == .exited(code: 126))
        let notInPath = try TandemRun(["supervise", "--", "tandem-no-such-program"], in: folder)
        #expect(await notInPath.wait() == .exited(code: 127))
    }

    @Test func d4EachSignalIsDeliveredToTheAppExactlyOnce() async throws {
        let names = ["HUP", "INT", "QUIT", "USR1", "USR2", "WINCH", "TERM"]
        let signals = folder.path("signals")
        let traps = names.map { "trap 'echo \($0) >> \(signals)' \($0)" }.joined(separator: "\n")
        let script = """
        \(traps)
        touch \(folder.path("ready"))
        while ! grep -q TERM \(signals) 2>/dev/null; do sleep 1 & wait $!; done
        exit 0
        """
        let run = try TandemRun(["supervise", "--", "/bin/sh", "-c", script], in: folder)
        #expect(await eventually { folder.exists("ready") })
        for (index, signal) in [SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGTERM].enumerated() {
            run.signal(signal)
            #expect(await eventually { folder.read("signals").split(separator: "\n").count == index + 1 })
        }
        #expect(await run.wait() == .exited(code: 0))
        #expect(folder.read("signals") == names.joined(separator: "\n") + "\n")
    }

    /// The supervisor blocks every signal and its HTTP loop ignores SIGPIPE; none of that may
    /// reach the app (Foundation `Process` leaks ignored signals into the child).
    @Test func theAppStartsWithNoBlockedSignalsAndDefaultActions() async throws {
        let admin = try await FakeAdmin(marker: marker, ready: true)
        let run = try supervise(admin, script: "exec grep -E '^Sig(Blk|Ign)' /proc/self/status")
        #expect(await run.wait() == .exited(code: 0))
        let masks = Dictionary(uniqueKeysWithValues: run.output.split(separator: "\n").map { line in
            let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            return (parts[0], UInt64(parts[1], radix: 16) ?? .max)
        })
        #expect(masks["SigBlk"] == 0)
        // glibc's posix_spawn leaves its two internal real-time signals (32, 33) ignored; nothing else.
        #expect(masks["SigIgn"].map { $0 & ~(UInt64(0b11) << 31) } == 0)
        await admin.stop()
    }

    @Test func d5SigtermAtTheMomentOfReadinessLeavesNoAppBehind() async throws {
        let admin = try await FakeAdmin(marker: marker)
        let appPID = folder.path("app.pid")
        let run = try supervise(admin, script: "echo $$ > \(appPID); exec sleep 100")
        admin.withState { $0.terminateOnReady = run.pid }
        admin.setReady(true)
        #expect(await run.wait() == .exited(code: 143))
        #expect(admin.calls("/quitquitquit").count == 1)
        if let pid = pid_t(folder.read("app.pid").trimmingCharacters(in: .whitespacesAndNewlines)) {
            #expect(await eventually { !isRunning(pid) })
        }
        await admin.stop()
    }
}

/// How soon the app starts once the proxy is ready (the issue's target: p99 under 20 ms on an
/// idle machine). Runs alone, one supervisor at a time; the bound asserted here is loose so a
/// loaded CI machine does not fail it, and the numbers are printed.
@Suite(.serialized) struct ReadinessLatencyTests {
    @Test func proxyReadyToAppStartDelay() async throws {
        let folder = try TestFolder()
        var pollGaps: [Double] = [], startDelays: [Double] = []
        for _ in 0..<20 {
            let admin = try await FakeAdmin(marker: folder.path("unused"))
            // bash opens the connection itself: no curl start-up in the measurement.
            let app = "exec 3<>/dev/tcp/127.0.0.1/\(admin.port); printf 'GET /started HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3; cat <&3 >/dev/null"
            let run = try TandemRun(["supervise", "--ready-url", admin.url("/ready"), "--", "/bin/bash", "-c", app], in: folder)
            #expect(await eventually { admin.readyPolls >= 2 })
            let flipped = NanoTime.now()
            admin.setReady(true)
            #expect(await run.wait() == .exited(code: 0))
            let firstReady = try #require(admin.withState { $0.firstReadyAnswer })
            let started = try #require(admin.calls("/started").first)
            pollGaps.append(milliseconds(from: flipped, to: firstReady))
            startDelays.append(milliseconds(from: firstReady, to: started.at))
            await admin.stop()
        }
        func percentile(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
        let total = zip(pollGaps, startDelays).map { $0 + $1 }
        print("proxy ready -> first 200 seen (ms): p50 \(percentile(pollGaps, 0.5)) p99 \(percentile(pollGaps, 0.99))")
        print("first 200 -> app's first request (ms): p50 \(percentile(startDelays, 0.5)) p99 \(percentile(startDelays, 0.99))")
        print("proxy ready -> app's first request (ms): p50 \(percentile(total, 0.5)) p99 \(percentile(total, 0.99))")
        #expect(percentile(total, 0.5) < 200)
    }
}
