// swift-tools-version:6.0
import PackageDescription

// Tandem: one binary, no third-party Swift packages. C comes from Debian
// (libyaml, OpenSSL 3) through system-library targets and one small shim.
let package = Package(
    name: "Tandem",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tandem", targets: ["tandem"]),
    ],
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .target(name: "CTandemShim", dependencies: ["COpenSSL"]),

        .target(name: "Document", dependencies: ["CYAML"]),
        .target(name: "Kubernetes", dependencies: ["Document"]),
        .target(name: "Injection", dependencies: ["Document", "Kubernetes"]),
        .target(name: "Net", dependencies: ["CTandemShim", "COpenSSL"]),
        .target(name: "Proxy", dependencies: ["Document", "Net", "CTandemShim"]),
        .target(name: "TandemCLI", dependencies: ["Document", "Kubernetes", "Injection", "Net", "Proxy"]),
        .executableTarget(name: "tandem", dependencies: ["TandemCLI"]),
        .executableTarget(name: "TandemBench", dependencies: ["CYAML", "Document", "Injection", "Kubernetes"]),

        .target(name: "TestSupport", dependencies: ["Document"], path: "Tests/TestSupport"),
        .testTarget(name: "DocumentTests", dependencies: ["Document", "TestSupport"]),
        .testTarget(name: "InjectionTests", dependencies: ["Injection", "Document", "Kubernetes", "TestSupport"]),
        .testTarget(name: "NetTests", dependencies: ["Net", "TestSupport"]),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "Net", "Document", "TestSupport"]),
        .testTarget(name: "TandemCLITests", dependencies: ["TandemCLI", "Document", "Injection", "TestSupport"],
                    exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
