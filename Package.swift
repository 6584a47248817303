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
        // No pkgConfig: it would add -lssl -lcrypto, the shared libraries (see the module map).
        .systemLibrary(name: "COpenSSL",
                       providers: [.apt(["libssl-dev"])]),
        .target(name: "CTandemShim", dependencies: ["COpenSSL"]),

        .target(name: "Document", dependencies: ["CYAML"]),
        .target(name: "Kubernetes", dependencies: ["Document"]),
        .target(name: "Injection", dependencies: ["Document", "Kubernetes"]),
        // Release builds drop Swift's run-time exclusivity checks in Net: a thread-local access
        // set consulted on nearly every access to connection state, about 3% of a keep-alive
        // request's CPU (Hack/bench/http). Net's state is loop-confined; debug builds, which the
        // tests run, keep the checks to catch any overlapping access.
        .target(name: "Net", dependencies: ["CTandemShim", "COpenSSL"],
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .target(name: "Bridge", dependencies: ["Document", "Kube", "Kubernetes", "Net", "Telemetry"]),
        .target(name: "Lifecycle", dependencies: ["Net", "CTandemShim"]),
        .target(name: "Telemetry", dependencies: ["Document"]),
        .target(name: "Kube", dependencies: ["Document", "Kubernetes", "Net", "Telemetry"]),
        .target(name: "Webhook", dependencies: ["Document", "Kubernetes", "Injection", "Net", "Telemetry", "Kube", "COpenSSL"]),
        // The proxy's data plane likewise: its connection state is confined to one worker's loop.
        .target(name: "Proxy", dependencies: ["Document", "Net", "Telemetry", "CTandemShim"],
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .target(name: "TandemCLI", dependencies: ["CYAML", "COpenSSL", "Document", "Kubernetes", "Injection", "Net", "Bridge", "Lifecycle",
                                                  "Telemetry", "Kube", "Webhook", "Proxy"]),
        .executableTarget(name: "tandem", dependencies: ["TandemCLI"]),
        .executableTarget(name: "TandemBench", dependencies: ["CYAML", "Document", "Injection", "Kubernetes"]),

        .target(name: "TestSupport", dependencies: ["Document", "Net", "Kube"], path: "Tests/TestSupport"),
        .testTarget(name: "DocumentTests", dependencies: ["Document", "TestSupport"]),
        .testTarget(name: "KubernetesTests", dependencies: ["Kubernetes", "Document", "TestSupport"]),
        .testTarget(name: "InjectionTests", dependencies: ["Injection", "Document", "Kubernetes", "TestSupport"]),
        .testTarget(name: "NetTests", dependencies: ["Net", "TestSupport"]),
        .testTarget(name: "BridgeTests", dependencies: ["Bridge", "Document", "Kube", "Kubernetes", "Net", "Telemetry", "TestSupport"]),
        .testTarget(name: "LifecycleTests", dependencies: ["Lifecycle", "Net", "CTandemShim", "TestSupport"]),
        .testTarget(name: "KubeTests", dependencies: ["Kube", "Kubernetes", "Document", "Net", "Telemetry", "TestSupport"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", "Document"]),
        .testTarget(name: "WebhookTests", dependencies: ["Webhook", "Kube", "Injection", "Document", "Kubernetes", "Net", "Telemetry", "TestSupport"]),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "Net", "Document", "Telemetry", "Bridge", "Kubernetes", "TestSupport"]),
        .testTarget(name: "TandemCLITests", dependencies: ["TandemCLI", "Document", "Injection", "TestSupport"],
                    exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
