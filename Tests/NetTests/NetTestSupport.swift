import Foundation
import Glibc
@testable import Net

/// A blocking loopback client for driving the server byte by byte.
final class RawClient {
    let fd: Int32

    init(port: Int, receiveTimeout: Duration = .seconds(5)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw SystemError("connect", code: errno) }
        var timeout = timeval(tv_sec: Int(receiveTimeout.components.seconds), tv_usec: Int(receiveTimeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Reads until `done` says the bytes so far are enough, EOF, or the receive timeout.
    func read(until done: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], eof: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !done(received) {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count == 0 { return (received, true) }
            if count < 0 { return (received, errno == ECONNRESET) }  // reset counts as closed
            received += buffer[0..<count]
        }
        return (received, false)
    }

    /// Reads `count` whole responses, parsing as bytes arrive.
    func readResponses(_ count: Int, head: Bool = false) -> [ParsedMessage] {
        var parser = HTTPParser(.response, limits: HTTPLimits(maxBodyBytes: .max))
        parser.respondingToHEAD = head
        var messages: [ParsedMessage] = []
        var current = ParsedMessage()
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while messages.count < count {
            let received = Glibc.read(fd, &buffer, buffer.count)
            if received <= 0 { break }
            pending += buffer[0..<received]
            do {
                while true {
                    let (consumed, event) = try parser.parse(pending)
                    switch event {
                    case .responseHead(let head): current.response = head
                    case .body(let range): current.body += pending[range]
                    case .end(let trailers):
                        current.trailers = trailers
                        messages.append(current)
                        current = ParsedMessage()
                    default: break
                    }
                    pending.removeFirst(consumed)
                    if event == nil { break }
                }
            } catch {
                break
            }
        }
        return messages
    }
}

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
