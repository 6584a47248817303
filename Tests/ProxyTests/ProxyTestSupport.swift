import Foundation
import Glibc
import Synchronization
import TestSupport
import Net
@testable import Proxy

/// A Net HTTP server that says who it is and echoes what it was sent.
struct Backend {
    let group: EventLoopGroup
    let server: HTTPServer
    let name: String
    /// `GET /held` requests, unanswered until `release()`: in flight for as long as a test needs.
    let held: HeldResponses
    var port: Int { server.port }
    var address: HostPort { HostPort(host: "127.0.0.1", port: port) }

    static func start(name: String) async throws -> Backend {
        var routes = HTTPRoutes()
        routes.add(.get, "/*") { request in
            var lines = ["backend=\(name)", "path=\(request.head.target)"]
            for field in request.headers { lines.append("\(field.name.lowercased())=\(field.value)") }
            return .text(200, lines.joined(separator: "\n"))
        }
        routes.add(.head, "/*") { _ in HTTPResponse(status: 200, headers: ["content-length": "5"]) }
        routes.add(.post, "/*") { request in HTTPResponse(status: 200, body: request.body) }
        routes.add(.get, "/fail") { _ in .text(500, "failing") }
        routes.add(.get, "/big") { _ in HTTPResponse(status: 200, body: [UInt8](repeating: 0x62, count: 4 << 20)) }
        let held = HeldResponses()
        routes.add(.get, "/held") { _ in HTTPResponse(status: 200) { writer in held.hold(writer) } }
        routes.add(.get, "/stream") { _ in
            HTTPResponse(status: 200) { writer in
                for index in 0..<50 { writer.write(Array("part\(index);".utf8)) }
                writer.finish()
            }
        }
        let group = try EventLoopGroup(threads: 1)
        var configuration = HTTPServerConfiguration()
        configuration.limits.maxBodyBytes = 64 << 20
        let server = HTTPServer(group: group, configuration: configuration, routes: routes)
        try await server.start()
        return Backend(group: group, server: server, name: name, held: held)
    }

    /// Answers every `GET /held` waiting so far with `backend=NAME held`.
    func release() { held.release(Array("backend=\(name) held".utf8)) }

    func stop() async {
        await server.shutdown(gracePeriod: .milliseconds(50))
        group.shutdown()
    }
}

final class HeldResponses: Sendable {
    private let writers = Mutex<[HTTPResponseWriter]>([])
    var count: Int { writers.withLock { $0.count } }
    func hold(_ writer: HTTPResponseWriter) { writers.withLock { $0.append(writer) } }
    func release(_ body: [UInt8]) {
        for writer in writers.withLock({ writers in defer { writers = [] }; return writers }) {
            writer.write(body)
            writer.finish()
        }
    }
}

/// `config` with a second listener, "out", an outbound one (the app's own calls) to "app".
func withOutboundListener(_ config: ProxyConfig) -> ProxyConfig {
    var config = config
    config.listeners.append(.init(name: "out", address: HostPort(host: "127.0.0.1", port: 0), direction: .outbound,
                                  routes: [.init(clusters: [.init("app")])]))
    return config
}

func httpConfig(_ endpoints: [HostPort], balancing: ProxyConfig.Balancing = .roundRobin,
                configure: (inout ProxyConfig.Cluster) -> Void = { _ in }) -> ProxyConfig {
    var cluster = ProxyConfig.Cluster(name: "app", balancing: balancing, endpoints: endpoints.map { .init($0) })
    cluster.outlier.maxEjectionPercent = 50
    configure(&cluster)
    return ProxyConfig(listeners: [.init(name: "in", address: HostPort(host: "127.0.0.1", port: 0), routes: [.init(clusters: [.init("app")])])],
                       clusters: [cluster])
}

