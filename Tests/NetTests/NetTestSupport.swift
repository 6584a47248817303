import Foundation
import Glibc
import TestSupport
@testable import Net

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
