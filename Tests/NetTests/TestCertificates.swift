import Foundation
import TestSupport

/// Throwaway PKI made with the `openssl` CLI in a temp dir at test time (no keys in git).
struct TestCertificates {
    let directory: String
    var caCert: String { "\(directory)/ca.crt" }
    var otherCACert: String { "\(directory)/other-ca.crt" }

    init() throws {
        directory = NSTemporaryDirectory() + "tandem-net-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeCA("ca")
        try makeCA("other-ca")
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try run(["openssl"] + arguments)
        guard result.status == 0 else { throw TestCertificateError(message: result.error) }
    }

    private func makeCA(_ name: String) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).crt",
                     "-days", "2", "-subj", "/CN=\(name)"])
    }

    /// Issues a certificate signed by the test CA; returns (certificate path, key path).
    @discardableResult
    func issue(_ name: String, commonName: String, subjectAltNames: String = "DNS:localhost,IP:127.0.0.1",
               clientAuth: Bool = false, into subdirectory: String? = nil) throws -> (cert: String, key: String) {
        let folder = subdirectory.map { "\(directory)/\($0)" } ?? directory
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let key = "\(folder)/\(name).key", csr = "\(directory)/\(name).csr", cert = "\(folder)/\(name).crt"
        let extensions = "\(directory)/\(name).ext"
        try "subjectAltName=\(subjectAltNames)\nextendedKeyUsage=\(clientAuth ? "clientAuth" : "serverAuth")\n"
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                     "-out", csr, "-subj", "/CN=\(commonName)"])
        try openssl(["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
                     "-out", cert, "-days", "2", "-extfile", extensions])
        return (cert, key)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

struct TestCertificateError: Error { let message: String }
