import Foundation
import Testing
import TestSupport

/// Runs the real `tandem` binary built beside the tests.
struct TandemProcess {
    static let binary: URL = {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tandem")
    }()

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// `environment` entries are set on top of the test's own; an empty value removes one.
    static func run(_ arguments: [String], stdin: String = "", environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if !environment.isEmpty {
            var merged = ProcessInfo.processInfo.environment
            for (name, value) in environment { merged[name] = value.isEmpty ? nil : value }
            process.environment = merged
        }
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self))
    }
}

/// A temporary folder removed when the test ends.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func read(_ name: String) throws -> String {
        try String(contentsOf: url.appendingPathComponent(name), encoding: .utf8)
    }
}

private let pod = """
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: app:1

"""

@Suite struct CommandTests {
    @Test func stdinIsTheDefaultInputAndTheReportGoesToStderr() throws {
        let result = try TandemProcess.run(["inject"], stdin: pod)
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n"))
        #expect(result.stdout.contains("- name: tandem-proxy"))
        #expect(result.stderr == "<stdin>: document 1: pod/web: injected (native)\n1 object(s): 1 injected, 0 unchanged\n")
        let back = try TandemProcess.run(["uninject", "-f", "-", "--quiet"], stdin: result.stdout)
        #expect(back.status == 0)
        #expect(back.stdout == pod)
        #expect(back.stderr.isEmpty)
    }

    @Test func jsonOutputAndYAMLOutputConvert() throws {
        let json = try TandemProcess.run(["inject", "-o", "json", "-q"], stdin: pod)
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let spec = try #require(object["spec"] as? [String: Any])
        #expect((spec["initContainers"] as? [[String: Any]])?.first?["name"] as? String == "tandem-proxy")
        let yaml = try TandemProcess.run(["uninject", "-o", "yaml", "-q"], stdin: json.stdout)
        #expect(yaml.stdout == pod)
    }

    @Test func foldersAreReadRecursivelyInOrder() throws {
        let folder = try TemporaryFolder()
        try folder.write("b/pod.yaml", pod)
        try folder.write("a.json", #"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#)
        try folder.write("notes.txt", "not a manifest")
        let result = try TandemProcess.run(["inject", "-f", folder.url.path])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix(#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"# + "\n---\napiVersion: v1\nkind: Pod"))
        #expect(result.stderr.contains("/a.json: document 1: configmap/c: not_a_workload\n"))
        #expect(result.stderr.contains("/b/pod.yaml: document 1: pod/web: injected (native)\n"))
    }

    @Test func inPlaceRewritesAllFilesOrNone() throws {
        let folder = try TemporaryFolder()
        let good = try folder.write("good.yaml", pod)
        let bad = try folder.write("bad.yaml", pod.replacingOccurrences(of: "metadata:\n", with: "metadata:\n  annotations:\n    tandem.io/drain-seconds: soon\n"))
        let failed = try TandemProcess.run(["inject", "--in-place", "-f", good, "-f", bad])
        #expect(failed.status == 1)
        #expect(failed.stdout.isEmpty)
        #expect(failed.stderr.contains("bad.yaml:5:30: document 1: annotation tandem.io/drain-seconds: \"soon\""))
        #expect(failed.stderr.hasSuffix("tandem inject: 1 input(s) failed; nothing was written\n"))
        #expect(try folder.read("good.yaml") == pod)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted() == ["bad.yaml", "good.yaml"])

        let succeeded = try TandemProcess.run(["inject", "--in-place", "-q", "-f", good])
        #expect(succeeded.status == 0)
        #expect(succeeded.stdout.isEmpty)
        #expect(try folder.read("good.yaml").contains("tandem-proxy"))
    }

    @Test func missingFileIsNamed() throws {
        let result = try TandemProcess.run(["inject", "-f", "/nonexistent/deploy.yaml"])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "error: /nonexistent/deploy.yaml: No such file or directory\n")
    }

    @Test func malformedYAMLNamesDocumentAndPlaceAndWritesNothing() throws {
        let result = try TandemProcess.run(["inject"], stdin: pod + "---\nkind: Pod\nmetadata: {name: x\n")
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("error: <stdin>:12:1: document 2: while parsing a flow mapping: did not find expected ',' or '}'\n"))
    }

    @Test(arguments: [
        (["inject", "--mode", "sideways"], "tandem inject: --mode must be one of auto, native, legacy, not \"sideways\""),
        (["inject", "--bogus"], "tandem inject: unknown option --bogus"),
        (["inject", "deploy.yaml"], "tandem inject: unexpected argument \"deploy.yaml\" (name files with -f)"),
        (["inject", "--in-place"], "tandem inject: --in-place needs files (-f PATH), not standard input"),
        (["inject", "--kube-version", "one"], "tandem inject: --kube-version \"one\" is not a Kubernetes version (like 1.29 or v1.30.2)"),
        (["inject", "-f"], "tandem inject: option -f needs a value (PATH)"),
        (["frobnicate"], "tandem: unknown command \"frobnicate\""),
        (["proxy", "--listen", "127.0.0.1:0", "--bridge", "http://127.0.0.1:8090"], "tandem proxy: --bridge and --service go together"),
        (["proxy", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--service", "web"], "tandem proxy: use either --to or --bridge with --service"),
        (["proxy", "--listen", "127.0.0.1:0", "--bridge", "bridge:8090", "--service", "web"],
         "tandem proxy: --bridge: unsupported URL \"bridge:8090\": want http:// or https://"),
    ])
    func usageErrorsExit64(arguments: [String], message: String) throws {
        let result = try TandemProcess.run(arguments)
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix(message + "\n"))
    }

    @Test(arguments: [["inject", "--help"], ["uninject", "-h"], ["help", "inject"], ["--help"]])
    func helpExitsZero(arguments: [String]) throws {
        let result = try TandemProcess.run(arguments)
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("Usage: tandem"))
    }

    @Test(arguments: [["version"], ["--version"]])
    func versionNamesTheLibrariesActuallyLoaded(arguments: [String]) throws {
        let result = try TandemProcess.run(arguments)
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first == "tandem 0.1.0")
        #expect(lines.contains("libyaml: 0.2.5"))
        #expect(lines.contains { $0.hasPrefix("openssl: OpenSSL 3.") })
        #expect(lines.contains { $0.hasPrefix("revision: ") })
    }

    @Test func explainPrintsEveryCheck() throws {
        let result = try TandemProcess.run(["inject", "-q", "--explain", "pod/web"], stdin: pod)
        #expect(result.status == 0)
        #expect(result.stderr.hasPrefix("pod/web (<stdin>, document 1): injected\n  - "))
    }

    @Test func configFileOverridesDefaultsAndBadConfigIsAUsageError() throws {
        let folder = try TemporaryFolder()
        let config = try folder.write("values.yaml", "proxy:\n  image: registry.example/tandem:9\n")
        let result = try TandemProcess.run(["inject", "-q", "--config", config], stdin: pod)
        #expect(result.status == 0)
        #expect(result.stdout.contains("image: registry.example/tandem:9"))
        let bad = try folder.write("bad.yaml", "proxy:\n  adminPort: lots\n")
        let failed = try TandemProcess.run(["inject", "--config", bad], stdin: pod)
        #expect(failed.status == 64)
        #expect(failed.stderr.hasPrefix("tandem inject: config \(bad):2:14: "))
    }
}

@Suite struct BridgeCommandTests {
    @Test func bridgeServesUntilSIGTERMAndExitsCleanly() throws {
        try serveAndStopBridge([])
    }

    /// With an API server that never answers, the informers and the election retry; SIGTERM
    /// still ends everything at once.
    @Test func bridgeWithAnUnreachableAPIServerStopsCleanly() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let refusing = RefusingPort()
        defer { refusing.close() }
        let folder = try TemporaryFolder()
        let kubeconfig = try folder.write("kubeconfig", """
            apiVersion: v1
            kind: Config
            current-context: test
            contexts: [{name: test, context: {cluster: test, user: test}}]
            clusters: [{name: test, cluster: {server: "https://\(refusing.address)", certificate-authority: "\(pki.caCertificate)"}}]
            users: [{name: test, user: {token: t}}]
            """)
        try serveAndStopBridge(["--kubeconfig", kubeconfig])
    }

    private func serveAndStopBridge(_ extra: [String]) throws {
        let folder = try TemporaryFolder()
        let tokens = try folder.write("tokens", "# registration tokens\ns3cret\n")
        let process = Process()
        process.executableURL = TandemProcess.binary
        process.arguments = ["bridge", "--listen", "127.0.0.1:0", "--token-file", tokens] + extra
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        // The first log line names the bound address.
        var logged = Data()
        while !logged.contains(UInt8(ascii: "\n")) {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            logged.append(chunk)
        }
        let line = String(decoding: logged, as: UTF8.self)
        #expect(line.contains(#""msg":"bridge serving","component":"bridge","address":"127.0.0.1:"#))
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let rest = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rest.contains(#""msg":"signal received; draining","component":"bridge","signal":15"#))
        #expect(rest.contains(#""msg":"bridge stopped""#))
    }

    @Test func bridgeUsageErrors() throws {
        let result = try TandemProcess.run(["bridge", "--ttl", "-5"])
        #expect(result.status == 64)
        #expect(result.stderr.hasPrefix("tandem bridge: --ttl must be a positive number of seconds\n"))
        let empty = try TemporaryFolder()
        let tokens = try empty.write("tokens", "\n# nothing\n")
        let noTokens = try TandemProcess.run(["bridge", "--token-file", tokens])
        #expect(noTokens.status == 64)
        #expect(noTokens.stderr.hasPrefix("tandem bridge: --token-file \(tokens) holds no tokens\n"))
        let missing = try TandemProcess.run(["bridge", "--kubeconfig", empty.url.path + "/absent"])
        #expect(missing.status == 64)
        #expect(missing.stderr.hasPrefix("tandem bridge: ") && missing.stderr.contains(empty.url.path + "/absent"))
        let alone = try TandemProcess.run(["bridge", "--advertise", "10.0.0.1:8090"], environment: ["KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": ""])
        #expect(alone.status == 64)
        #expect(alone.stderr.hasPrefix("tandem bridge: --advertise needs a Kubernetes API"))
    }
}

/// Servers raise their soft descriptor limit to the hard one: a pod's runtime may hand out 1,024
/// under a far higher hard limit, which would cap a proxy near 500 proxied connections.
@Suite struct DescriptorLimitTests {
    @Test(arguments: [
        (["proxy", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9", "--admin", "127.0.0.1:0"], "open descriptors"),
        (["bridge", "--listen", "127.0.0.1:0"], "bridge serving"),
    ])
    func serversRaiseTheirSoftLimitToTheHardOne(arguments: [String], readyLine: String) async throws {
        let hard = try #require(Self.openFilesLimits(of: "self")?.hard)
        try #require(hard > 256, "the hard limit here is \(hard): nothing to raise to")
        let folder = try TemporaryFolder()
        let tokens = try folder.write("tokens", "s3cret\n")
        // Only the soft limit lowered.
        let (process, logged) = try await Self.start(arguments + (arguments[0] == "bridge" ? ["--token-file", tokens] : []),
                                                     descriptors: "256:", readyLine: readyLine)
        let limits = Self.openFilesLimits(of: "\(process.processIdentifier)")
        process.terminate()
        process.waitUntilExit()
        #expect(logged.contains(readyLine), "\(arguments[0]) did not start: \(logged)")
        #expect(limits?.soft == hard && limits?.hard == hard, "soft/hard \(String(describing: limits)), hard before \(hard)")
        if arguments[0] == "proxy" { #expect(logged.contains("up to \(hard) open descriptors")) }
    }

    /// With a hard limit it cannot raise, a proxy that runs out of descriptors neither crashes nor
    /// spins on a listener it cannot accept from; once connections close, it serves again.
    @Test func aProxyOutOfDescriptorsWaitsAndRecovers() async throws {
        let refusing = RefusingPort()
        defer { refusing.close() }
        let (process, logged) = try await Self.start(
            ["proxy", "--listen", "127.0.0.1:0", "--to", refusing.address, "--admin", "127.0.0.1:0"], descriptors: "48:48", readyLine: "open descriptors")
        defer { process.terminate(); process.waitUntilExit() }
        let port = try #require(logged.split(separator: "\n").first { $0.contains(" http on 127.0.0.1:") }
            .flatMap { Int($0.split(separator: ":").last ?? "") }, "no listener line in: \(logged)")
        #expect(logged.contains("up to 48 open descriptors"))
        // Answered 503: the one endpoint refuses connections.
        #expect(try await Self.waitsOutOfDescriptorsThenAnswers(process, port: port, path: "/") == 503)
        let admin = try #require(logged.split(separator: "\n").first { $0.contains("admin on 127.0.0.1:") }
            .flatMap { Int($0.split(separator: ":").last?.split(separator: ";").first ?? "") })
        let metrics = try #require(try RawClient(port: admin).get("/stats/prometheus")).text
        let pauses = metrics.split(separator: "\n").first { $0.hasPrefix("tandem_proxy_downstream_accept_pauses_total ") }
        #expect(pauses.flatMap { Int($0.split(separator: " ")[1]) } ?? 0 > 0, "\(pauses ?? "no pause counter")")
    }

    /// The bridge (Net's listener) behaves the same.
    @Test func theBridgeOutOfDescriptorsWaitsAndRecovers() async throws {
        let folder = try TemporaryFolder()
        let tokens = try folder.write("tokens", "s3cret\n")
        let (process, logged) = try await Self.start(
            ["bridge", "--listen", "127.0.0.1:0", "--token-file", tokens, "--workers", "1"], descriptors: "48:48", readyLine: "bridge serving")
        defer { process.terminate(); process.waitUntilExit() }
        let address = try #require(logged.firstRange(of: #""address":"127.0.0.1:"#), "no address in: \(logged)")
        let port = try #require(Int(logged[address.upperBound...].prefix { $0.isNumber }))
        #expect(try await Self.waitsOutOfDescriptorsThenAnswers(process, port: port, path: "/v1/registration/web") == 200)
    }

    /// `tandem ARGUMENTS` under a descriptor limit ("SOFT:HARD", or "SOFT:" for the soft one only;
    /// prlimit execs tandem in the same process), and its log up to `readyLine`, read on a
    /// Dispatch thread (a blocking read on the concurrency pool stalls the tests sharing it).
    static func start(_ arguments: [String], descriptors: String, readyLine: String) async throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        process.arguments = ["--nofile=\(descriptors)", TandemProcess.binary.path] + arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let logged = try await offThePool {
            var logged = ""
            while !logged.contains(readyLine) {
                let chunk = errors.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                logged += String(decoding: chunk, as: UTF8.self)
            }
            return logged
        }
        return (process, logged)
    }

    /// Connects more clients than the server has descriptors (the kernel completes the connects;
    /// the server cannot take them all), checks it does not spin meanwhile, lets them go, and
    /// returns the status a new client then gets.
    static func waitsOutOfDescriptorsThenAnswers(_ process: Process, port: Int, path: String) async throws -> Int? {
        var clients = try await offThePool { try (0..<80).map { _ in try RawClient(port: port, receiveTimeout: .seconds(2)) } }
        try await Task.sleep(for: .milliseconds(300))
        let before = cpuSeconds(of: process.processIdentifier)
        try await Task.sleep(for: .seconds(1))
        let spent = cpuSeconds(of: process.processIdentifier) - before
        #expect(spent < 0.3, "\(process.arguments?[2] ?? "") used \(spent) s of CPU in 1 s while out of descriptors")
        #expect(process.isRunning)
        clients.removeAll()  // closes them
        var status: Int?
        await eventually {
            status = try? await offThePool { (try? RawClient(port: port, receiveTimeout: .seconds(2)))?.get(path)?.head.status }
            return status != nil
        }
        return status
    }

    /// User plus system CPU time of a process, from /proc/PID/stat.
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let end = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: end)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The "Max open files" line of /proc/PID/limits.
    static func openFilesLimits(of pid: String) -> (soft: Int, hard: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }) else { return nil }
        let fields = line.dropFirst("Max open files".count).split(separator: " ")
        guard fields.count >= 2, let soft = Int(fields[0]), let hard = Int(fields[1]) else { return nil }
        return (soft, hard)
    }
}
