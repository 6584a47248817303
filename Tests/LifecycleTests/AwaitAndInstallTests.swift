import Foundation
import Glibc
import Testing
import TestSupport
@testable import Lifecycle
import Net

/// `tandem await` (the proxy container's legacy-mode postStart hook), `tandem install` (the init
/// container), and the command lines' help and usage errors.
@Suite struct AwaitAndInstallTests {
    let folder: TestFolder

    init() throws { folder = try TestFolder() }

    // MARK: await --ready-url (postStart)

    @Test func awaitReadyReturnsOnceTheProxyAnswers200() async throws {
        let admin = try await FakeAdmin(marker: folder.path("unused"))
        // Generous bounds: a loaded machine may take seconds to start the process (time, not failure).
        let run = try TandemRun(["await", "--ready-url", admin.url("/ready"), "--timeout", "60"], in: folder)
        #expect(await eventually(timeout: .seconds(30)) { admin.readyPolls >= 3 })
        #expect(await run.wait(timeout: .zero) == nil)
        admin.setReady(true)
        #expect(await run.wait(timeout: .seconds(30)) == .exited(code: 0))
        #expect(run.log.contains(#"msg="proxy is ready""#))
        await admin.stop()
    }

    @Test func awaitReadyTimesOutWith69() async throws {
        let admin = try await FakeAdmin(marker: folder.path("unused"))
        // Long enough for a first answer even when the machine is busy starting processes.
        let run = try TandemRun(["await", "--ready-url", admin.url("/ready"), "--timeout", "1"], in: folder)
        #expect(await run.wait() == .exited(code: 69))
        #expect(run.log.contains(#"level=error msg="proxy not ready in time""#))
        #expect(run.log.contains(#"last_answer="status 503""#))
        await admin.stop()
    }

    @Test func awaitReadyDeadlineDoesNotWaitForAHungProbe() async throws {
        let admin = try await FakeAdmin(marker: folder.path("unused"), ready: true)
        admin.withState { $0.readyHangs = true }
        let run = try TandemRun(["await", "--ready-url", admin.url("/ready"), "--timeout", "0.2"], in: folder)
        #expect(await run.wait() == .exited(code: 69))
        #expect(run.log.contains("last_answer=none"))
        await admin.stop()
    }

    // MARK: install

    @Test func installCopiesTheRunningBinaryAtomically() async throws {
        let run = try TandemRun(["install", folder.root], in: folder)
        #expect(await run.wait() == .exited(code: 0))
        let installed = folder.path("tandem")
        #expect(FileManager.default.contentsEqual(atPath: installed, andPath: TandemRun.binary))
        var info = stat()
        #expect(stat(installed, &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o755)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.root).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
        // Installing again replaces the file in place.
        #expect(try await TandemRun(["install", folder.root + "/"], in: folder).wait() == .exited(code: 0))
    }

    @Test func installIntoAMissingFolderFailsClearly() async throws {
        let run = try TandemRun(["install", folder.path("missing")], in: folder)
        #expect(await run.wait() == .exited(code: 1))
        #expect(run.log.contains("tandem install: \(folder.path("missing"))/tandem.tandem-"))
        #expect(run.log.contains("No such file or directory"))
    }

    // MARK: Command lines

    @Test(arguments: ["supervise", "await", "install"])
    func helpExits0(command: String) async throws {
        let run = try TandemRun([command, "--help"], in: folder)
        #expect(await run.wait() == .exited(code: 0))
        #expect(run.output.hasPrefix("Usage: tandem \(command)"))
        let viaHelp = try TandemRun(["help", command], in: folder)
        #expect(await viaHelp.wait() == .exited(code: 0))
        #expect(viaHelp.output == run.output)
    }

    static let usageErrors: [([String], String)] = [
        (["supervise", "/bin/true"], "put the app's command after --"),
        (["supervise", "--"], "no command after --"),
        (["supervise", "x", "--", "/bin/true"], "unexpected argument \"x\" before --"),
        (["supervise", "--ready-url", "ftp://x", "--", "/bin/true"], "--ready-url: unsupported URL"),
        (["supervise", "--ready-url", "http://127.0.0.1:1/ready", "--on-timeout", "maybe", "--", "/bin/true"], "--on-timeout must be one of fail, start"),
        (["supervise", "--kill-after", "-1", "--", "/bin/true"], "--kill-after wants a number of seconds"),
        (["supervise", "--drain-delay", "5", "--kill-after", "5", "--", "/bin/true"], "--kill-after must be longer than --drain-delay"),
        (["supervise", "--bogus", "--", "/bin/true"], "unknown option --bogus"),
        (["supervise", "--on-timeout", "start", "--", "/bin/true"], "--on-timeout needs --ready-url"),
        (["await", "--app-exit"], "unknown option --app-exit"),
        (["await", "--timeout", "soon"], "--timeout wants a number of seconds"),
        (["install"], "name the folder to install into"),
        (["install", "a", "b"], "only one folder"),
    ]

    @Test(arguments: usageErrors)
    func usageErrorsExit64(arguments: [String], message: String) async throws {
        let run = try TandemRun(arguments, in: folder)
        #expect(await run.wait() == .exited(code: 64))
        #expect(run.log.contains(message))
        #expect(run.log.contains("Run 'tandem \(arguments[0]) --help' for usage."))
    }

    @Test func theAppsOwnOptionsAfterTheSeparatorAreNotParsed() async throws {
        let run = try TandemRun(["supervise", "--", "/bin/sh", "-c", "echo \"$@\"", "sh", "--help", "-x"], in: folder)
        #expect(await run.wait() == .exited(code: 0))
        #expect(run.output == "--help -x\n")
    }
}
