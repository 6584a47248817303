import Document
import Foundation
import Testing
import TestSupport

/// The real `tandem` binary, built beside the tests.
let tandemBinary: String = {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("tandem").path
}()

/// A running `tandem <arguments>` whose JSON log lines (stderr) are collected as they come.
final class TandemServerProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var buffer: [UInt8] = []
    private let done = DispatchSemaphore(value: 0)

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: tandemBinary)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for name in ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] { merged[name] = nil }
        process.environment = merged.merging(environment) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let handle = errors.fileHandleForReading
        DispatchQueue.global().async { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                lock.lock()
                buffer += data
                lock.unlock()
            }
            done.signal()
        }
    }

    /// Every complete log line so far, parsed.
    var logs: [JSON] {
        lock.lock()
        let bytes = buffer
        lock.unlock()
        return bytes.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONReader.parse(Array($0)) }
    }

    func logs(_ message: String) -> [JSON] { logs.filter { $0["msg"]?.stringValue == message } }

    /// The port from the "webhook listening" line.
    func waitForPort() async throws -> Int {
        var port: Int?
        await eventually(timeout: .seconds(10)) {
            if let address = logs("webhook listening").first?["address"]?.stringValue,
               let text = address.split(separator: ":").last { port = Int(text) }
            return port != nil || !process.isRunning
        }
        guard let port else {
            throw FixtureError("tandem did not start: \(String(decoding: buffer, as: UTF8.self))")
        }
        return port
    }

    /// Sends SIGTERM and returns the exit status.
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        return waitForExit()
    }

    func waitForExit() -> Int32 {
        process.waitUntilExit()
        done.wait()
        return process.terminationStatus
    }
}

/// One HTTPS request with curl; returns (status, body).
func curl(port: Int, caFile: String, method: String = "POST", path: String = "/inject?timeout=10s",
          contentType: String? = "application/json", body: [UInt8]? = nil, host: String = "localhost") throws -> (Int, String) {
    var arguments = ["curl", "-sS", "--cacert", caFile, "-X", method, "-o", "-", "-w", "\n%{http_code}",
                     "--resolve", "\(host):\(port):127.0.0.1", "https://\(host):\(port)\(path)"]
    if let contentType { arguments += ["-H", "Content-Type: \(contentType)"] } else { arguments += ["-H", "Content-Type:"] }
    if body != nil { arguments += ["--data-binary", "@-"] }
    let run = try runProcess(arguments, stdin: body)
    let text = String(decoding: run.output, as: UTF8.self)
    guard let newline = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: newline)...]) else {
        throw FixtureError("curl failed: \(run.error)")
    }
    return (status, String(text[..<newline]))
}
