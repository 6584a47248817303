import Foundation
import COpenSSL
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Net

@Suite(.serialized) struct TLSTests {
    @Test func servesHTTPSToCurlAndOpenSSL() async throws {
        let pki = try TestCertificates()
        defer { pki.remove() }
        let (cert, key) = try pki.issue("server", commonName: "server")
        let tls = try TLSContext(.server(certificateFile: cert, keyFile: key, alpn: ["http/1.1"]))
        let errors = Mutex<[String]>([])
        let server = try await TestServer.start(HTTPServerConfiguration(tls: tls, onConnectionError: { peer, error in
            errors.withLock { $0.append("\(peer?.ip ?? "?") \(error)") }
        }))
        let port = server.port
        let curl = try run(["curl", "-sS", "--cacert", pki.caCert, "--resolve", "localhost:\(port):127.0.0.1",
                            "https://localhost:\(port)/hello", "https://localhost:\(port)/peer"])
        #expect(curl.output == "hello127.0.0.1", "\(curl.error)")
        let chunked = try run(["curl", "-sS", "--cacert", pki.caCert, "--resolve", "localhost:\(port):127.0.0.1",
                               "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", "https://localhost:\(port)/echo"],
                              stdin: Array(repeating: 0x7A, count: 100_000))
        #expect(chunked.output.count == 100_000)
        #expect(try run(["curl", "-sS", "https://127.0.0.1:\(port)/hello"]).status != 0)  // untrusted CA

        let modern = try run(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.caCert,
                              "-tls1_2", "-alpn", "http/1.1", "-verify_return_error"], stdin: [])
        #expect(modern.output.contains("Verify return code: 0 (ok)"))
        #expect(modern.output.contains("ALPN protocol: http/1.1"))
        #expect(modern.output.contains("Protocol  : TLSv1.2") || modern.output.contains("TLSv1.2"))
        let tls13 = try run(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.caCert, "-tls1_3"], stdin: [])
        #expect(tls13.output.contains("TLSv1.3"))
        let old = try run(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], stdin: [])
        #expect(old.status != 0)  // below the TLS 1.2 minimum
        let wrongCA = try run(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.otherCACert,
                               "-verify_return_error"], stdin: [])
        #expect(wrongCA.status != 0)
        #expect((wrongCA.output + wrongCA.error).contains("unable to get local issuer certificate"))
        // Garbage instead of a ClientHello fails only that connection.
        let garbage = try RawClient(port: port)
        garbage.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(garbage.read().eof)
        #expect(await eventually { errors.withLock { $0.contains { $0.hasPrefix("127.0.0.1 TLS handshake failed") } } })
        #expect(try run(["curl", "-sS", "--cacert", pki.caCert, "https://127.0.0.1:\(port)/hello"]).output == "hello")
        await server.stop()
    }

    @Test func reloadsSwappedCertificatesWithoutDroppingConnections() async throws {
        let pki = try TestCertificates()
        defer { pki.remove() }
        // The layout of a mounted Secret: tls.crt -> ..data/tls.crt, ..data -> a versioned dir.
        let dir = pki.directory
        try pki.issue("tls", commonName: "first", into: "v1")
        try pki.issue("tls", commonName: "second", into: "v2")
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: "\(dir)/..data", withDestinationPath: "v1")
        try fm.createSymbolicLink(atPath: "\(dir)/tls.crt", withDestinationPath: "..data/tls.crt")
        try fm.createSymbolicLink(atPath: "\(dir)/tls.key", withDestinationPath: "..data/tls.key")
        let tls = try TLSContext(.server(certificateFile: "\(dir)/tls.crt", keyFile: "\(dir)/tls.key", reloadCheckInterval: .zero))
        let server = try await TestServer.start(HTTPServerConfiguration(tls: tls))
        let port = server.port
        func presentedName() throws -> String {
            let output = try run(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.caCert], stdin: []).output
            return output.contains("CN = second") || output.contains("CN=second") ? "second"
                : output.contains("CN = first") || output.contains("CN=first") ? "first" : "none"
        }
        #expect(try presentedName() == "first")

        let client = HTTPClient(loop: server.group.next(), configuration: HTTPClientConfiguration(tls: try TLSContext(.client(trustedCAFile: pki.caCert))))
        let request = HTTPClientRequest(isTLS: true, host: "127.0.0.1", port: port, target: "/hello")
        #expect(try await client.send(request).body == Array("hello".utf8))
        #expect(await client.idleConnectionCount() == 1)

        // Swap the directory symlink atomically, as the kubelet does.
        try fm.createSymbolicLink(atPath: "\(dir)/..data_tmp", withDestinationPath: "v2")
        #expect(rename("\(dir)/..data_tmp", "\(dir)/..data") == 0)
        #expect(try presentedName() == "second")
        #expect(tls.reloadStatus.reloads == 1)
        // The connection opened before the swap still serves.
        #expect(try await client.send(request).body == Array("hello".utf8))
        #expect(await server.server.connectionCounts().reduce(0, +) == 1)

        // A half-written update is not loaded; the last good certificate stays in use.
        try "not a certificate".write(toFile: "\(dir)/v2/tls.crt", atomically: false, encoding: .utf8)
        #expect(try presentedName() == "second")
        #expect(tls.reloadStatus.lastError != nil)
        await client.closeIdleConnections()
        await server.stop()
    }

    @Test func clientVerifiesNamesAddressesAndCAs() async throws {
        let pki = try TestCertificates()
        defer { pki.remove() }
        let (good, goodKey) = try pki.issue("good", commonName: "good")
        let (wrong, wrongKey) = try pki.issue("wrong", commonName: "wrong", subjectAltNames: "DNS:wrong.example,IP:10.9.9.9")
        let goodServer = try await TestServer.start(HTTPServerConfiguration(tls: try TLSContext(.server(certificateFile: good, keyFile: goodKey))))
        let wrongServer = try await TestServer.start(HTTPServerConfiguration(tls: try TLSContext(.server(certificateFile: wrong, keyFile: wrongKey))))
        let trusted = try TLSContext(.client(trustedCAFile: pki.caCert))
        let client = HTTPClient(loop: goodServer.group.next(), configuration: HTTPClientConfiguration(tls: trusted))

        // IP SAN and DNS SAN (with SNI) both verify.
        #expect(try await client.send(HTTPClientRequest(url: "https://127.0.0.1:\(goodServer.port)/hello")).status == 200)
        #expect(try await client.send(HTTPClientRequest(url: "https://localhost:\(goodServer.port)/hello")).status == 200)

        func failure(_ url: String, _ client: HTTPClient) async -> String {
            do {
                _ = try await client.send(try HTTPClientRequest(url: url))
                return "succeeded"
            } catch {
                return "\(error)"
            }
        }
        let ipMismatch = await failure("https://127.0.0.1:\(wrongServer.port)/hello", client)
        #expect(ipMismatch.contains("IP address mismatch"), "\(ipMismatch)")
        let nameMismatch = await failure("https://localhost:\(wrongServer.port)/hello", client)
        #expect(nameMismatch.contains("hostname mismatch"), "\(nameMismatch)")
        let untrusting = HTTPClient(loop: goodServer.group.next(), configuration: HTTPClientConfiguration(tls: try TLSContext(.client(trustedCAFile: pki.otherCACert))))
        let unknownCA = await failure("https://127.0.0.1:\(goodServer.port)/hello", untrusting)
        #expect(unknownCA.contains("unable to get local issuer certificate"), "\(unknownCA)")
        await goodServer.stop()
        await wrongServer.stop()
    }

    @Test func mutualTLSRequiresAClientCertificate() async throws {
        let pki = try TestCertificates()
        defer { pki.remove() }
        let (cert, key) = try pki.issue("server", commonName: "server")
        let (clientCert, clientKey) = try pki.issue("client", commonName: "client", subjectAltNames: "DNS:client", clientAuth: true)
        let tls = try TLSContext(.server(certificateFile: cert, keyFile: key, clientCAFile: pki.caCert))
        let server = try await TestServer.start(HTTPServerConfiguration(tls: tls))
        let url = "https://127.0.0.1:\(server.port)/hello"
        let withCert = HTTPClient(loop: server.group.next(), configuration: HTTPClientConfiguration(
            tls: try TLSContext(.client(trustedCAFile: pki.caCert, certificateFile: clientCert, keyFile: clientKey))))
        #expect(try await withCert.send(HTTPClientRequest(url: url)).body == Array("hello".utf8))
        let without = HTTPClient(loop: server.group.next(), configuration: HTTPClientConfiguration(tls: try TLSContext(.client(trustedCAFile: pki.caCert))))
        await #expect(throws: (any Error).self) { _ = try await without.send(HTTPClientRequest(url: url)) }
        #expect(try run(["curl", "-sS", "--cacert", pki.caCert, "--cert", clientCert, "--key", clientKey, url]).output == "hello")
        await withCert.closeIdleConnections()
        await server.stop()
    }

    @Test func certificatesAndKeysMayBeHeldInMemory() async throws {
        let pki = try TestCertificates()
        defer { pki.remove() }
        let (cert, key) = try pki.issue("server", commonName: "server")
        let (clientCert, clientKey) = try pki.issue("client", commonName: "client", subjectAltNames: "DNS:client", clientAuth: true)
        let server = try await TestServer.start(HTTPServerConfiguration(
            tls: try TLSContext(.server(certificateFile: cert, keyFile: key, clientCAFile: pki.caCert))))
        // What a kubeconfig's certificate-authority-data, client-certificate-data and client-key-data carry.
        let inline = try TLSContext(.client(trustedCA: .bytes(readFile(pki.caCert)), certificate: .bytes(readFile(clientCert)),
                                            key: .bytes(readFile(clientKey))))
        let client = HTTPClient(loop: server.group.next(), configuration: HTTPClientConfiguration(tls: inline))
        #expect(try await client.send(HTTPClientRequest(url: "https://127.0.0.1:\(server.port)/hello")).body == Array("hello".utf8))
        await client.closeIdleConnections()
        await server.stop()
        // Not PEM: refused, naming the source without showing the bytes.
        #expect { try TLSContext(.client(trustedCA: .bytes(Array("not a certificate".utf8)))) } throws: { error in
            "\(error)".contains("loading CA bundle (inline PEM)")
        }
        #expect { try TLSContext(.client(trustedCA: nil, certificate: .bytes(try readFile(clientCert)), key: .bytes(Array("nope".utf8)))) } throws: { error in
            "\(error)".contains("loading key (inline PEM)")
        }
    }

    /// Bytes the server has read ahead wait inside OpenSSL, where epoll cannot see them: forty
    /// pipelined requests, each its own record, arrive in one write and are all answered, though
    /// one turn of the loop serves sixteen records of a connection.
    @Test func answersEveryRequestReadAheadInOneRead() async throws {
        let pki = try TestCertificates()
        defer { pki.remove() }
        let (cert, key) = try pki.issue("server", commonName: "server")
        let server = try await TestServer.start(HTTPServerConfiguration(tls: try TLSContext(.server(certificateFile: cert, keyFile: key))))
        let client = try RawTLSClient(port: server.port)
        // The records are gathered in memory and sent in one piece.
        let records = try #require(BIO_new(BIO_s_mem()))
        SSL_set0_wbio(client.ssl, records)
        let request = Array("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        for _ in 0..<40 { #expect(SSL_write(client.ssl, request, Int32(request.count)) == Int32(request.count)) }
        var gathered = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(records)))
        #expect(BIO_read(records, &gathered, Int32(gathered.count)) == Int32(gathered.count))
        #expect(client.socket.send(gathered))
        // Until forty answers or the socket's receive timeout.
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while text(received).components(separatedBy: "HTTP/1.1 200").count - 1 < 40 {
            let count = SSL_read(client.ssl, &buffer, Int32(buffer.count))
            guard count > 0 else { break }
            received += buffer[0..<Int(count)]
        }
        #expect(text(received).components(separatedBy: "HTTP/1.1 200").count - 1 == 40)
        await server.stop()
    }

    /// A read that leaves OpenSSL holding nothing goes back to epoll: a request whose head and
    /// body come in records sent apart is still answered, and so is the next one, on a server
    /// that keeps its buffers while idle.
    @Test func answersRequestsWhoseRecordsArriveApart() async throws {
        let pki = try TestCertificates()
        defer { pki.remove() }
        let (cert, key) = try pki.issue("server", commonName: "server")
        var configuration = TLSConfiguration.server(certificateFile: cert, keyFile: key)
        configuration.keepsIdleBuffers = true
        let server = try await TestServer.start(HTTPServerConfiguration(tls: try TLSContext(configuration)))
        let client = try RawTLSClient(port: server.port)
        var buffer = [UInt8](repeating: 0, count: 16_384)
        for round in 0..<2 {
            let body = Array("body \(round)".utf8)
            let head = Array("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
            #expect(SSL_write(client.ssl, head, Int32(head.count)) == Int32(head.count))
            try await Task.sleep(for: .milliseconds(50))
            #expect(SSL_write(client.ssl, body, Int32(body.count)) == Int32(body.count))
            // Until the echoed body or the socket's receive timeout.
            var received: [UInt8] = []
            while !text(received).hasSuffix("body \(round)") {
                let count = SSL_read(client.ssl, &buffer, Int32(buffer.count))
                guard count > 0 else { break }
                received += buffer[0..<Int(count)]
            }
            #expect(text(received).hasPrefix("HTTP/1.1 200"))
            #expect(text(received).hasSuffix("\r\n\r\nbody \(round)"))
        }
        await server.stop()
    }

    @Test func badFilesAreErrorsThatSayWhy() {
        #expect(throws: TLSError.self) { try TLSContext(.server(certificateFile: "/nonexistent.crt", keyFile: "/nonexistent.key")) }
        do {
            _ = try TLSContext(.server(certificateFile: "/nonexistent.crt", keyFile: "/nonexistent.key"))
        } catch {
            #expect(error.description.contains("loading certificate /nonexistent.crt"))
        }
    }
}

/// A TLS client driven with OpenSSL's own calls, so a test decides how its records reach the
/// server (gathered into one write, or sent apart).
private final class RawTLSClient {
    let socket: RawClient
    let context: OpaquePointer
    let ssl: OpaquePointer

    init(port: Int) throws {
        socket = try RawClient(port: port)
        context = try #require(SSL_CTX_new(TLS_client_method()))
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            throw TLSError.openSSL("SSL_new")
        }
        self.ssl = ssl
        SSL_set_fd(ssl, socket.fd)
        try #require(SSL_connect(ssl) == 1)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }
}
