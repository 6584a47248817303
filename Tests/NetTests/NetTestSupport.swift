import Foundation
import Glibc
import TestSupport
@testable import Net

/// Runs a command and returns its exit status and standard output.
@discardableResult
func run(_ arguments: [String], stdin: [UInt8]? = nil) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe(), error = Pipe(), input = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin)) }
    try input.fileHandleForWriting.close()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    let errData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A server on a fresh two-loop group; `stop` tears both down.
struct TestServer {
    let group: EventLoopGroup
    let server: HTTPServer
    var port: Int { server.port }

    static func start(_ configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
                      routes: HTTPRoutes = standardRoutes()) async throws -> TestServer {
        let group = try EventLoopGroup(threads: 2)
        let server = HTTPServer(group: group, configuration: configuration, routes: routes)
        try await server.start()
        return TestServer(group: group, server: server)
    }

    func stop() async {
        await server.shutdown(gracePeriod: .milliseconds(100))
        group.shutdown()
    }
}

func standardRoutes() -> HTTPRoutes {
    var routes = HTTPRoutes()
    routes.add(.get, "/hello") { _ in .text(200, "hello") }
    routes.add(.post, "/echo") { request in HTTPResponse(status: 200, body: request.body) }
    routes.add(.put, "/echo") { request in HTTPResponse(status: 200, body: request.body) }
    routes.add(.get, "/peer") { request in .text(200, request.peer?.ip ?? "none") }
    routes.add(.get, "/big") { _ in HTTPResponse(status: 200, body: [UInt8](repeating: 0x62, count: 1 << 20)) }
    routes.add(.get, "/files/*") { request in .text(200, "file \(request.path.dropFirst(7))") }
    routes.add(.get, "/bad-header") { _ in HTTPResponse(status: 200, headers: ["X": "a\r\nInjected: 1"]) }
    return routes
}
