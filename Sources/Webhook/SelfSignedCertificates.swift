import COpenSSL
import Glibc

/// A CA and a serving certificate it signed, in PEM: what `--self-signed` stores in a Secret.
public struct CertificateBundle: Sendable, Equatable {
    public var caCertificate: [UInt8]
    public var certificate: [UInt8]
    public var privateKey: [UInt8]

    public init(caCertificate: [UInt8], certificate: [UInt8], privateKey: [UInt8]) {
        self.caCertificate = caCertificate
        self.certificate = certificate
        self.privateKey = privateKey
    }
}

public struct CertificateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ step: String) {
        var text = step
        let code = ERR_get_error()
        if code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            text += ": " + String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        ERR_clear_error()
        description = text
    }
}

/// Makes a P-256 CA and a serving certificate for the webhook's Service names with OpenSSL, in
/// memory. The CA key is thrown away: nothing will ever need to sign with it again, since a new
/// bundle is simply generated and stored when one is missing.
public enum SelfSignedCertificates {
    /// The DNS names a Service is reached by from the apiserver.
    public static func serviceNames(service: String, namespace: String) -> [String] {
        [service, "\(service).\(namespace)", "\(service).\(namespace).svc", "\(service).\(namespace).svc.cluster.local"]
    }

    public static func generate(commonName: String, dnsNames: [String], ipAddresses: [String] = [],
                                validDays: Int = 3650) throws(CertificateError) -> CertificateBundle {
        let caKey = try newKey()
        defer { EVP_PKEY_free(caKey) }
        let ca = try newCertificate(subject: "\(commonName) CA", key: caKey, validDays: validDays)
        defer { X509_free(ca) }
        try addExtensions(to: ca, issuer: ca, [
            (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
            (NID_key_usage, "critical,keyCertSign,cRLSign"),
            (NID_subject_key_identifier, "hash"),
        ])
        try sign(ca, with: caKey)

        let key = try newKey()
        defer { EVP_PKEY_free(key) }
        let leaf = try newCertificate(subject: commonName, key: key, validDays: validDays)
        defer { X509_free(leaf) }
        guard X509_set_issuer_name(leaf, X509_get_subject_name(ca)) == 1 else { throw CertificateError("X509_set_issuer_name") }
        let alternativeNames = (dnsNames.map { "DNS:\($0)" } + ipAddresses.map { "IP:\($0)" }).joined(separator: ",")
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature,keyEncipherment"),
            (NID_ext_key_usage, "serverAuth"),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
        ]
        if !alternativeNames.isEmpty { extensions.append((NID_subject_alt_name, alternativeNames)) }
        try addExtensions(to: leaf, issuer: ca, extensions)
        try sign(leaf, with: caKey)

        return CertificateBundle(caCertificate: try pem { PEM_write_bio_X509($0, ca) },
                                 certificate: try pem { PEM_write_bio_X509($0, leaf) },
                                 privateKey: try pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) })
    }

    private static func newKey() throws(CertificateError) -> OpaquePointer {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else { throw CertificateError("EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1,
              EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) == 1,
              EVP_PKEY_keygen(context, &key) == 1, let key else { throw CertificateError("generating a P-256 key") }
        return key
    }

    /// A v3 certificate for `key` with a random serial, valid from an hour ago (clock skew),
    /// issued by itself until a caller sets another issuer.
    private static func newCertificate(subject: String, key: OpaquePointer, validDays: Int) throws(CertificateError) -> OpaquePointer {
        guard let certificate = X509_new() else { throw CertificateError("X509_new") }
        let serial = BN_new()
        defer { BN_free(serial) }
        guard X509_set_version(certificate, 2) == 1,
              BN_rand(serial, 127, -1, 0) == 1, BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(certificate)) != nil,
              X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != nil,
              X509_gmtime_adj(X509_getm_notAfter(certificate), validDays * 86_400) != nil,
              X509_set_pubkey(certificate, key) == 1,
              X509_NAME_add_entry_by_txt(X509_get_subject_name(certificate), "CN", MBSTRING_ASC, subject, -1, -1, 0) == 1,
              X509_set_issuer_name(certificate, X509_get_subject_name(certificate)) == 1
        else {
            X509_free(certificate)
            throw CertificateError("building the certificate for \(subject)")
        }
        return certificate
    }

    private static func addExtensions(to certificate: OpaquePointer, issuer: OpaquePointer,
                                      _ extensions: [(Int32, String)]) throws(CertificateError) {
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer, certificate, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw CertificateError("extension \(String(cString: OBJ_nid2sn(nid))) = \(value)")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(certificate, ext, -1) == 1 else { throw CertificateError("X509_add_ext") }
        }
    }

    private static func sign(_ certificate: OpaquePointer, with key: OpaquePointer) throws(CertificateError) {
        guard X509_sign(certificate, key, EVP_sha256()) > 0 else { throw CertificateError("X509_sign") }
    }

    private static func pem(_ write: (OpaquePointer) -> Int32) throws(CertificateError) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CertificateError("BIO_new") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw CertificateError("writing PEM") }
        var bytes = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
        let count = BIO_read(bio, &bytes, Int32(bytes.count))
        guard count == bytes.count else { throw CertificateError("reading PEM") }
        return bytes
    }
}
