import Foundation

/// A throwaway CA and certificates made with the `openssl` CLI in a temporary folder (no keys in git).
public final class TestPKI: Sendable {
    public let directory: String
    public var caCertificate: String { "\(directory)/ca.crt" }

    public init() throws {
        directory = NSTemporaryDirectory() + "tandem-pki-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", "\(directory)/ca.key", "-out", caCertificate, "-days", "2", "-subj", "/CN=tandem-test-ca"])
    }

    /// Issues a serving certificate for localhost and 127.0.0.1 into `folder` (created) as
    /// `tls.crt` and `tls.key`; returns the folder.
    @discardableResult
    public func issue(commonName: String, into folder: String) throws -> String {
        let path = "\(directory)/\(folder)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(path)/tls.key",
                     "-out", "\(path)/tls.csr", "-subj", "/CN=\(commonName)"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: "\(path)/ext.cnf", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "\(path)/tls.csr", "-CA", caCertificate, "-CAkey", "\(directory)/ca.key",
                     "-CAcreateserial", "-days", "1", "-out", "\(path)/tls.crt", "-extfile", "\(path)/ext.cnf"])
        return path
    }

    /// The common name of the certificate served at 127.0.0.1:`port`.
    public func servedCommonName(port: Int) throws -> String? {
        let run = try runProcess(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", caCertificate,
                                  "-verify_return_error", "-servername", "localhost"], stdin: [])
        let text = String(decoding: run.output, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.contains("subject=") }),
              let range = line.range(of: "CN") else { return nil }
        return String(line[range.upperBound...].drop { $0 == " " || $0 == "=" })
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func openssl(_ arguments: [String]) throws {
        let run = try runProcess(["openssl"] + arguments)
        guard run.status == 0 else { throw FixtureError("openssl \(arguments.first ?? ""): \(run.error)") }
    }
}

/// A folder laid out as the kubelet mounts a ConfigMap or Secret: `name -> ..data/name`,
/// `..data -> ..<version>`; `publish` swaps `..data` atomically, as the kubelet does.
public struct MountedFolder: Sendable {
    public let path: String
    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes a new version holding `files` and points `..data` (and each name) at it.
    public func publish(_ files: [String: [UInt8]], version: String) throws {
        let versioned = "\(path)/..\(version)"
        try FileManager.default.createDirectory(atPath: versioned, withIntermediateDirectories: true)
        for (name, bytes) in files {
            try Data(bytes).write(to: URL(fileURLWithPath: "\(versioned)/\(name)"))
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(path)/\(name)")) == nil {
                try FileManager.default.createSymbolicLink(atPath: "\(path)/\(name)", withDestinationPath: "..data/\(name)")
            }
        }
        let temporary = "\(path)/..data_tmp"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: "..\(version)")
        guard rename(temporary, "\(path)/..data") == 0 else { throw FixtureError("rename ..data: errno \(errno)") }
    }
}
