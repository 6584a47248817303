import Kubernetes

/// How the proxy is ordered around the app, as configured or annotated.
public enum LifecycleMode: String, Sendable, CaseIterable {
    /// Native where the server supports it, legacy otherwise.
    case auto
    case native
    case legacy

    /// Native sidecars are on by default from Kubernetes 1.29 (beta). An unknown server is assumed
    /// current: an old server that drops the field would leave pods stuck in Init, so callers that
    /// can ask the server should.
    public static let nativeSince = KubernetesVersion(major: 1, minor: 29)

    public func resolved(kubeVersion: KubernetesVersion?) -> SidecarMode {
        switch self {
        case .native: return .native
        case .legacy: return .legacy
        case .auto:
            guard let kubeVersion else { return .native }
            return kubeVersion >= Self.nativeSince ? .native : .legacy
        }
    }
}

/// The way a proxy is actually injected.
public enum SidecarMode: String, Sendable, CaseIterable {
    /// First init container with `restartPolicy: Always`; the kubelet orders start and stop.
    case native
    /// First regular container with blocking postStart/preStop hooks and wrapped app commands.
    case legacy
}
