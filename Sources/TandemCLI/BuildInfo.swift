import COpenSSL
import CYAML

/// What this binary is. `Hack/image/build` stamps the source revision and the compiler's version
/// in for release images (and puts them back afterwards); a plain `swift build` says "unknown".
public enum BuildInfo {
    public static let version = "0.1.0"
    public static let revision = "unknown"
    public static let swiftVersion = "unknown"

    /// libyaml's version, from the library actually loaded.
    public static var libyamlVersion: String { String(cString: yaml_get_version_string()) }

    /// OpenSSL's version, from the library actually loaded ("OpenSSL 3.0.x …").
    public static var openSSLVersion: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }

    /// The same facts as metric labels (`tandem_build_info`).
    public static var labels: [(name: String, value: String)] {
        [("version", version), ("revision", revision), ("swift", swiftVersion),
         ("libyaml", libyamlVersion), ("openssl", openSSLVersion)]
    }

    /// The lines `tandem version` prints.
    public static var summary: String {
        """
        tandem \(version)
        revision: \(revision)
        swift: \(swiftVersion)
        libyaml: \(libyamlVersion)
        openssl: \(openSSLVersion)

        """
    }
}
