import Glibc
import COpenSSL
import CTandemShim
import Synchronization

/// A TLS failure, with OpenSSL's reason (and the verification result, when there was one).
public struct TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }

    /// The operation that failed, with the oldest queued OpenSSL error.
    static func openSSL(_ operation: String) -> TLSError {
        var buffer = [CChar](repeating: 0, count: 256)
        let code = tandem_tls_error_text(&buffer, buffer.count)
        let reason = code == 0 ? "no OpenSSL error queued" : String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return TLSError("\(operation): \(reason)")
    }
}

/// Where PEM material comes from: a file (watched, and reloaded when it changes) or bytes
/// held in memory (a kubeconfig's `*-data` fields), which keeps private keys off the disk.
public enum PEMSource: Sendable, Equatable, CustomStringConvertible {
    case file(String)
    case bytes([UInt8])

    /// The file name, or "(inline PEM)": for error messages, never the key itself.
    public var description: String {
        switch self {
        case .file(let path): path
        case .bytes: "(inline PEM)"
        }
    }
}

/// PEM for one side of a TLS connection, and what to verify.
public struct TLSConfiguration: Sendable {
    public enum Role: Sendable { case server, client }
    public var role: Role
    /// Our certificate chain and key (required for servers; a client certificate for mTLS).
    public var certificate: PEMSource?
    public var key: PEMSource?
    /// CA bundle to verify the peer with. A client without one uses the system store; a server
    /// with one requires and verifies client certificates.
    public var trustedCA: PEMSource?
    /// ALPN protocols in preference order.
    public var alpn: [String]
    /// How often a new connection may trigger a check of the files for changes.
    public var reloadCheckInterval: Duration
    /// Whether an idle connection keeps OpenSSL's read and write buffers (about 33 KB together)
    /// rather than freeing them and allocating them again for its next request: for a server
    /// with a few busy keep-alive clients, where every request would pay for both.
    public var keepsIdleBuffers = false

    public static func server(certificateFile: String, keyFile: String, clientCAFile: String? = nil,
                              alpn: [String] = ["http/1.1"], reloadCheckInterval: Duration = .seconds(1)) -> TLSConfiguration {
        TLSConfiguration(role: .server, certificate: .file(certificateFile), key: .file(keyFile), trustedCA: clientCAFile.map(PEMSource.file),
                         alpn: alpn, reloadCheckInterval: reloadCheckInterval)
    }

    public static func client(trustedCAFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
                              alpn: [String] = ["http/1.1"], reloadCheckInterval: Duration = .seconds(1)) -> TLSConfiguration {
        client(trustedCA: trustedCAFile.map(PEMSource.file), certificate: certificateFile.map(PEMSource.file),
               key: keyFile.map(PEMSource.file), alpn: alpn, reloadCheckInterval: reloadCheckInterval)
    }

    public static func client(trustedCA: PEMSource?, certificate: PEMSource? = nil, key: PEMSource? = nil,
                              alpn: [String] = ["http/1.1"], reloadCheckInterval: Duration = .seconds(1)) -> TLSConfiguration {
        TLSConfiguration(role: .client, certificate: certificate, key: key, trustedCA: trustedCA,
                         alpn: alpn, reloadCheckInterval: reloadCheckInterval)
    }
}

/// An OpenSSL context built from PEM, rebuilt when its files change on disk.
///
/// Kubernetes updates a mounted Secret by swapping a symlink, so the files are compared by what
/// `stat` follows to (device, inode, size, mtime). A rebuild that fails (say, a half-written
/// file) keeps the previous context and is retried at the next check. Connections already open
/// keep the context they started with.
public final class TLSContext: Sendable {
    public let configuration: TLSConfiguration
    private struct Current: @unchecked Sendable {
        var context: OpaquePointer
        var fingerprint: [FileFingerprint]
        var lastCheck: NanoTime
        var reloads: Int
        var lastReloadError: TLSError?
    }
    private let current: Mutex<Current>

    public init(_ configuration: TLSConfiguration) throws(TLSError) {
        self.configuration = configuration
        let fingerprint = Self.fingerprint(configuration)
        let context = try Self.build(configuration)
        current = Mutex(Current(context: context, fingerprint: fingerprint, lastCheck: .now(), reloads: 0, lastReloadError: nil))
    }

    deinit {
        current.withLock { SSL_CTX_free($0.context) }
    }

    /// How many times the files were reloaded, and why the last attempt failed (if it did).
    public var reloadStatus: (reloads: Int, lastError: TLSError?) {
        current.withLock { ($0.reloads, $0.lastReloadError) }
    }

    /// The context for a new connection (reloaded first if the files changed); the caller owns
    /// one reference and must `SSL_CTX_free` it.
    func contextForNewConnection() -> OpaquePointer {
        current.withLock { state in
            let now = NanoTime.now()
            if configuration.reloadCheckInterval <= .zero || state.lastCheck + configuration.reloadCheckInterval <= now {
                state.lastCheck = now
                let fingerprint = Self.fingerprint(configuration)
                if fingerprint != state.fingerprint {
                    do throws(TLSError) {
                        let context = try Self.build(configuration)
                        SSL_CTX_free(state.context)
                        state.context = context
                        state.fingerprint = fingerprint
                        state.reloads += 1
                        state.lastReloadError = nil
                    } catch {
                        state.lastReloadError = error
                    }
                }
            }
            SSL_CTX_up_ref(state.context)
            return state.context
        }
    }

    private static func build(_ configuration: TLSConfiguration) throws(TLSError) -> OpaquePointer {
        let isServer = configuration.role == .server
        guard let context = isServer ? tandem_tls_server_ctx_new() : tandem_tls_client_ctx_new() else {
            throw TLSError.openSSL("SSL_CTX_new")
        }
        do throws(TLSError) {
            if let certificate = configuration.certificate {
                let loaded = switch certificate {
                case .file(let path): SSL_CTX_use_certificate_chain_file(context, path) == 1
                case .bytes(let pem): tandem_tls_use_pem_chain(context, pem, pem.count) == 1
                }
                guard loaded else { throw TLSError.openSSL("loading certificate \(certificate)") }
                guard let key = configuration.key else { throw TLSError("certificate \(certificate) has no key") }
                let keyLoaded = switch key {
                case .file(let path): SSL_CTX_use_PrivateKey_file(context, path, SSL_FILETYPE_PEM) == 1
                case .bytes(let pem): tandem_tls_use_pem_key(context, pem, pem.count) == 1
                }
                guard keyLoaded else { throw TLSError.openSSL("loading key \(key)") }
                guard SSL_CTX_check_private_key(context) == 1 else {
                    throw TLSError.openSSL("key does not match certificate \(certificate)")
                }
            } else if isServer {
                throw TLSError("a TLS server needs a certificate and key")
            }
            if let ca = configuration.trustedCA {
                let loaded = switch ca {
                case .file(let path): SSL_CTX_load_verify_locations(context, path, nil) == 1
                case .bytes(let pem): tandem_tls_add_pem_trust(context, pem, pem.count) > 0
                }
                guard loaded else { throw TLSError.openSSL("loading CA bundle \(ca)") }
                if isServer { SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil) }
            } else if !isServer {
                guard SSL_CTX_set_default_verify_paths(context) == 1 else { throw TLSError.openSSL("loading system CA store") }
            }
            if configuration.keepsIdleBuffers { tandem_tls_keep_idle_buffers(context) }
            var wire: [UInt8] = []
            for name in configuration.alpn where !name.isEmpty && name.utf8.count < 256 {
                wire.append(UInt8(name.utf8.count))
                wire.append(contentsOf: name.utf8)
            }
            if !wire.isEmpty {
                let ok = isServer ? tandem_tls_set_server_alpn(context, wire, UInt32(wire.count)) == 1
                                  : SSL_CTX_set_alpn_protos(context, wire, UInt32(wire.count)) == 0
                guard ok else { throw TLSError.openSSL("setting ALPN") }
            }
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        return context
    }

    private static func fingerprint(_ configuration: TLSConfiguration) -> [FileFingerprint] {
        [configuration.certificate, configuration.key, configuration.trustedCA].compactMap { source in
            if case .file(let path) = source { FileFingerprint(path) } else { nil }
        }
    }
}

/// What `stat` (following symlinks) says about a file; any difference means it changed.
struct FileFingerprint: Equatable, Sendable {
    var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = -1, seconds: Int = 0, nanoseconds: Int = 0

    init(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        seconds = info.st_mtim.tv_sec
        nanoseconds = info.st_mtim.tv_nsec
    }
}

/// One TLS connection over a non-blocking socket.
final class TLSSession {
    let ssl: OpaquePointer
    let isServer: Bool

    enum Progress { case done, wantRead, wantWrite }

    init(context: TLSContext, fd: Int32, serverName: String?) throws(TLSError) {
        let sslContext = context.contextForNewConnection()
        defer { SSL_CTX_free(sslContext) }
        guard let ssl = SSL_new(sslContext) else { throw TLSError.openSSL("SSL_new") }
        self.ssl = ssl
        isServer = context.configuration.role == .server
        SSL_set_fd(ssl, fd)
        if isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName {
                if SocketAddress.isIPLiteral(serverName) {
                    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
                } else {
                    _ = tandem_tls_set_sni(ssl, serverName)
                    SSL_set1_host(ssl, serverName)
                }
            }
        }
    }

    deinit { SSL_free(ssl) }

    func handshake() throws(TLSError) -> Progress {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .done }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                ERR_clear_error()
                throw TLSError("TLS handshake failed: certificate verification: \(reason)")
            }
            let error = TLSError.openSSL("TLS handshake failed")
            if error.description.hasSuffix("no OpenSSL error queued") {
                throw TLSError("TLS handshake failed: connection closed by peer")
            }
            throw error
        }
    }

    /// Bytes read, 0 at a clean or unclean close, or wouldBlock.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> (IOResult, wantsWrite: Bool) {
        var count = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count) == 1 { return (.done(count), false) }
        return try classify("SSL_read")
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) -> (IOResult, wantsWrite: Bool) {
        var count = 0
        if SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &count) == 1 { return (.done(count), false) }
        return try classify("SSL_write")
    }

    private func classify(_ operation: String) throws(TLSError) -> (IOResult, wantsWrite: Bool) {
        let code = SSL_get_error(ssl, 0)
        switch code {
        case SSL_ERROR_WANT_READ: return (.wouldBlock, false)
        case SSL_ERROR_WANT_WRITE: return (.wouldBlock, true)
        case SSL_ERROR_ZERO_RETURN: return (.done(0), false)
        case SSL_ERROR_SYSCALL:
            let error = TLSError.openSSL(operation)
            if errno == 0 || errno == ECONNRESET || error.description.hasSuffix("no OpenSSL error queued") { return (.done(0), false) }
            throw error
        default:
            throw TLSError.openSSL(operation)
        }
    }

    /// Whether OpenSSL holds bytes already read from the socket (read ahead) or decrypted and
    /// not yet taken: epoll no longer reports them.
    var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

    /// Sends close_notify, best effort.
    func shutdown() { _ = SSL_shutdown(ssl) }

    /// The protocol ALPN settled on, if any.
    var negotiatedProtocol: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let length = tandem_tls_alpn_selected(ssl, &buffer, UInt32(buffer.count))
        return length == 0 ? nil : String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
