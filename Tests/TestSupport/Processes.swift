import Foundation

/// Runs a program to completion (found on PATH), feeding `stdin`; for tests that check Tandem
/// against independent tools (`kubectl`, `openssl`, `curl`) and run the real binary.
public func runProcess(_ arguments: [String], stdin: [UInt8]? = nil,
                       environment: [String: String]? = nil) throws -> (status: Int32, output: [UInt8], error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe(), error = Pipe(), input = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = input
    try process.run()
    let helpers = DispatchGroup()
    let errorBox = Box()
    DispatchQueue.global().async(group: helpers) { @Sendable in
        if let stdin { input.fileHandleForWriting.write(Data(stdin)) }
        try? input.fileHandleForWriting.close()
    }
    DispatchQueue.global().async(group: helpers) { @Sendable in
        errorBox.data = error.fileHandleForReading.readDataToEndOfFile()
    }
    let out = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    helpers.wait()
    return (process.terminationStatus, Array(out), String(decoding: errorBox.data ?? Data(), as: UTF8.self))
}

/// True when `program` is on PATH.
public func hasProgram(_ program: String) -> Bool {
    (try? runProcess(["sh", "-c", "command -v \(program)"]).status) == 0
}

private final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Data?
    var data: Data? {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}

/// `runProcess` with the output as text, for tests that compare what curl or openssl print.
@discardableResult
public func run(_ arguments: [String], stdin: [UInt8]? = nil) throws -> (status: Int32, output: String, error: String) {
    let result = try runProcess(arguments, stdin: stdin)
    return (result.status, String(decoding: result.output, as: UTF8.self), result.error)
}

/// Runs blocking work (a process, a blocking read) on a Dispatch thread and waits for it without
/// blocking: Swift concurrency shares a thread per core among every running test, and one held
/// by a blocking call stalls all the others.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
