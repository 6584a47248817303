import Document
@testable import Injection
import Kubernetes
import Testing

@Suite struct ModeTests {
    @Test(arguments: [("1.28", SidecarMode.legacy), ("v1.28.4", .legacy), ("1.29", .native), ("v1.29.0-eks-1", .native),
                      ("1.33", .native), (nil, .native)] as [(String?, SidecarMode)])
    func autoFollowsTheServerVersion(version: String?, expected: SidecarMode) throws {
        let kubeVersion = version.flatMap { KubernetesVersion($0) }
        #expect(LifecycleMode.auto.resolved(kubeVersion: kubeVersion) == expected)
        let (_, report) = try injectOne(Fixtures.simplePod(), kubeVersion: kubeVersion)
        #expect(report.mode == expected)
        let line = kubeVersion.map { "Kubernetes \($0) → \(expected.rawValue)" } ?? "Kubernetes version unknown → native"
        #expect(report.explanation.contains("lifecycle auto from injection.mode: \(line)"))
    }

    @Test func explicitModesIgnoreTheVersion() throws {
        #expect(LifecycleMode.native.resolved(kubeVersion: KubernetesVersion("1.20")) == .native)
        #expect(LifecycleMode.legacy.resolved(kubeVersion: KubernetesVersion("1.33")) == .legacy)
        let legacyConfig = Injector(config: try InjectionConfig(values: ["injection": ["mode": "legacy"]]))
        let (_, report) = try injectOne(Fixtures.simplePod(), injector: legacyConfig, kubeVersion: KubernetesVersion("1.33"))
        #expect(report.mode == .legacy)
        let (_, overridden) = try injectOne(Fixtures.simplePod(), injector: legacyConfig, lifecycle: .native)
        #expect(overridden.mode == .native)
        #expect(overridden.explanation.contains("lifecycle native from the caller's override"))
    }

    @Test func nativePutsTheProxyFirstAmongInitContainers() throws {
        let pod = Fixtures.pod(spec: [
            "initContainers": [Fixtures.container("migrate", command: ["/migrate"])],
            "containers": [Fixtures.container("app", command: ["/app"], ports: [8080]), Fixtures.container("worker")],
        ])
        let (object, report) = try injectOne(pod, lifecycle: .native)
        let spec = object["spec"]
        #expect(names(spec?["initContainers"]) == ["tandem-proxy", "migrate"])
        #expect(names(spec?["containers"]) == ["app", "worker"])
        #expect(spec?["volumes"] == nil)
        #expect(spec?["containers"] == pod["spec"]?["containers"])
        #expect(report.warnings.isEmpty)

        let proxy = try #require(container("tandem-proxy", in: spec, list: "initContainers"))
        #expect(proxy["restartPolicy"] == "Always")
        #expect(proxy["args"] == ["proxy"])
        #expect(proxy["lifecycle"] == nil)
        #expect(proxy["image"] == "ghcr.io/tandem-mesh/tandem:0.1.0")
        #expect(proxy["imagePullPolicy"] == "IfNotPresent")
        #expect(proxy["ports"] == [["name": "tandem-health", "containerPort": 15021, "protocol": "TCP"]])
        #expect(proxy["readinessProbe"] == ["httpGet": ["path": "/ready", "port": "tandem-health"], "periodSeconds": 5])
        #expect(proxy["startupProbe"] == ["httpGet": ["path": "/ready", "port": "tandem-health"], "periodSeconds": 1, "failureThreshold": 120])
        #expect(proxy["securityContext"] == [
            "runAsNonRoot": true, "runAsUser": 2102, "runAsGroup": 2102, "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false, "capabilities": ["drop": ["ALL"]], "seccompProfile": ["type": "RuntimeDefault"],
        ])
        #expect(proxy["env"] == [
            ["name": "POD_NAME", "valueFrom": ["fieldRef": ["fieldPath": "metadata.name"]]],
            ["name": "POD_NAMESPACE", "valueFrom": ["fieldRef": ["fieldPath": "metadata.namespace"]]],
            ["name": "POD_IP", "valueFrom": ["fieldRef": ["fieldPath": "status.podIP"]]],
            ["name": "TANDEM_INBOUND_PORTS", "value": "8080"],
            ["name": "TANDEM_ADMIN_PORT", "value": "15000"],
            ["name": "TANDEM_HEALTH_PORT", "value": "15021"],
            ["name": "TANDEM_LOG_LEVEL", "value": "info"],
            ["name": "TANDEM_DRAIN_SECONDS", "value": "30"],
            ["name": "TANDEM_LIFECYCLE", "value": "native"],
        ])
        #expect(object["metadata"]?["annotations"]?["kubectl.kubernetes.io/default-container"] == "app")
    }

    @Test func nativeDrainDelayNeedsTheSleepAction() throws {
        let injector = Injector(config: try InjectionConfig(values: ["proxy": ["drainDelaySeconds": 5]]))
        let (object, report) = try injectOne(Fixtures.simplePod(), injector: injector, kubeVersion: KubernetesVersion("1.30"))
        #expect(container("tandem-proxy", in: object["spec"], list: "initContainers")?["lifecycle"]
            == ["preStop": ["sleep": ["seconds": 5]]])
        // The app gets its SIGTERM as soon as the pod is deleted: the same sleep holds it.
        #expect(container("app", in: object["spec"])?["lifecycle"] == ["preStop": ["sleep": ["seconds": 5]]])
        #expect(report.warnings == ["the proxy may take 35s to drain but terminationGracePeriodSeconds is 30s"])

        let (old, oldReport) = try injectOne(Fixtures.simplePod(), injector: injector, kubeVersion: KubernetesVersion("1.29"))
        #expect(container("tandem-proxy", in: old["spec"], list: "initContainers")?["lifecycle"] == nil)
        #expect(container("app", in: old["spec"])?["lifecycle"] == nil)
        #expect(oldReport.warnings == ["drain delay of 5s not applied: the preStop sleep action needs Kubernetes 1.30, server is 1.29.0"])

    }

    /// An app container's own hooks stay: a postStart gains the sleep beside it, an own preStop is
    /// left alone (said in a warning), and uninject restores both exactly.
    @Test func nativeDrainDelayKeepsTheAppsOwnHooks() throws {
        let injector = Injector(config: try InjectionConfig(values: ["proxy": ["drainDelaySeconds": 5]]))
        let postStart: JSON = ["exec": ["command": ["/warm-up"]]]
        let ownStop: JSON = ["httpGet": ["path": "/shutdown", "port": 8080]]
        let pod = Fixtures.pod(spec: ["terminationGracePeriodSeconds": 60, "containers": [
            Fixtures.container("app", command: ["/app"], extra: ["lifecycle": ["postStart": postStart]]),
            Fixtures.container("cache", command: ["/cache"], extra: ["lifecycle": ["preStop": ownStop]]),
        ]])
        let (object, report) = try injectOne(pod, injector: injector, kubeVersion: KubernetesVersion("1.33"))
        #expect(container("app", in: object["spec"])?["lifecycle"] == ["postStart": postStart, "preStop": ["sleep": ["seconds": 5]]])
        #expect(container("cache", in: object["spec"])?["lifecycle"] == ["preStop": ownStop])
        #expect(report.warnings == ["container \"cache\" has a preStop hook of its own, so the drain delay does not hold its SIGTERM"])
        #expect(try Injector().uninject(object: object).object == pod)
    }

    /// Legacy mode cannot use the kubelet's preStop sleep for the app: its supervisor holds the
    /// stop signal instead, and the proxy learns the delay to extend its deadline.
    @Test func legacyDrainDelayIsHeldByTheSupervisor() throws {
        let injector = Injector(config: try InjectionConfig(values: ["proxy": ["drainDelaySeconds": 5]]))
        let (object, report) = try injectOne(Fixtures.simplePod(), injector: injector, lifecycle: .legacy, kubeVersion: KubernetesVersion("1.27"))
        #expect(report.warnings == ["the proxy may take 35s to drain but terminationGracePeriodSeconds is 30s"])
        let proxy = try #require(container("tandem-proxy", in: object["spec"]))
        #expect(env("TANDEM_DRAIN_DELAY_SECONDS", of: proxy) == "5")
        #expect(proxy["lifecycle"]?["preStop"] == nil)
        let command = try #require(container("app", in: object["spec"])?["command"]?.arrayValue)
        let flag = try #require(command.firstIndex(of: "--drain-delay"))
        #expect(command[flag + 1] == "5" && command[flag + 2] == "--")

        let (native, _) = try injectOne(Fixtures.simplePod(), injector: injector, kubeVersion: KubernetesVersion("1.30"))
        let nativeProxy = try #require(container("tandem-proxy", in: native["spec"], list: "initContainers"))
        #expect(env("TANDEM_DRAIN_DELAY_SECONDS", of: nativeProxy) == nil, "the preStop sleep has run before SIGTERM")
    }

    /// The pod's restartPolicy decides which app exits end the pod, and so stop the proxy.
    @Test(arguments: [(nil, "stop"), ("Always", "stop"), ("OnFailure", "success"), ("Never", "exit")] as [(String?, String)])
    func wrapperQuitsTheProxyAsTheRestartPolicySays(restartPolicy: String?, quitOn: String) throws {
        var spec: JSON = ["containers": [Fixtures.container("app", command: ["/app"])]]
        if let restartPolicy, case .object(var object) = spec {
            object["restartPolicy"] = .string(restartPolicy)
            spec = .object(object)
        }
        let (object, _) = try injectOne(Fixtures.pod(spec: spec), lifecycle: .legacy)
        let command = try #require(container("app", in: object["spec"])?["command"]?.arrayValue)
        let flag = try #require(command.firstIndex(of: "--quit-on"))
        #expect(command[flag + 1] == .string(quitOn))
    }

    /// A Job whose image's ENTRYPOINT is not in the pod spec: the annotation supplies it, the app
    /// runs under `tandem supervise`, and uninject removes the command it never had.
    @Test func entrypointAnnotationWrapsContainersWithoutACommand() throws {
        let pod = Fixtures.pod(annotations: ["tandem.io/entrypoint": #"["/report", "--daily"]"#],
                               spec: ["restartPolicy": "Never",
                                      "containers": [Fixtures.container("report", extra: ["args": ["--since=24h"]])]])
        let (object, report) = try injectOne(pod, lifecycle: .legacy)
        #expect(report.warnings.isEmpty)
        let app = try #require(container("report", in: object["spec"]))
        #expect(Array(app["command"]?.arrayValue?.suffix(5) ?? []) == ["--quit-on", "exit", "--", "/report", "--daily"])
        #expect(app["args"] == ["--since=24h"])
        let restored = try Injector().uninject(object: object).object
        #expect(restored == pod)
        #expect(container("report", in: restored["spec"])?.objectValue?.keys.contains("command") == false)
    }

    @Test(arguments: ["/report", "[]", #"["/a", 3]"#, #"[""]"#])
    func entrypointAnnotationMustBeAListOfStrings(value: String) {
        let pod = Fixtures.pod(annotations: ["tandem.io/entrypoint": .string(value)],
                               spec: ["containers": [Fixtures.container("app")]])
        let error = injectionError { _ = try injectOne(pod, lifecycle: .legacy) }
        #expect(error?.message == "annotation tandem.io/entrypoint: \"\(value)\" must be a JSON list of strings, like [\"/app\", \"serve\"]")
    }

    @Test func legacyOrdersWithHooksAndWrappers() throws {
        let pod = Fixtures.pod(spec: [
            "initContainers": [Fixtures.container("migrate", command: ["/migrate"])],
            "containers": [
                Fixtures.container("app", command: ["/app", "--port", "8080"], ports: [8080], extra: ["args": ["-v"]]),
                Fixtures.container("worker"),
            ],
        ])
        let (object, report) = try injectOne(pod, lifecycle: .legacy, kubeVersion: KubernetesVersion("1.33"))
        let spec = object["spec"]
        #expect(report.mode == .legacy)
        #expect(names(spec?["containers"]) == ["tandem-proxy", "app", "worker"])
        #expect(names(spec?["initContainers"]) == ["tandem-init", "migrate"])
        #expect(spec?["volumes"] == [["name": "tandem-bin", "emptyDir": [:]]])
        #expect(report.warnings == [
            "container \"worker\" has no command, so it cannot be wrapped: the proxy will not learn when it exits "
                + "(state its command, give the image's entrypoint in tandem.io/entrypoint, or use native mode)",
        ])

        let proxy = try #require(container("tandem-proxy", in: spec))
        #expect(proxy["restartPolicy"] == nil)
        #expect(env("TANDEM_LIFECYCLE", of: proxy) == "legacy")
        #expect(proxy["lifecycle"] == [
            "postStart": ["exec": ["command": ["/usr/local/bin/tandem", "await", "--ready-url", "http://127.0.0.1:15000/ready",
                                               "--timeout", "120"]]],
        ], "no preStop: the proxy's SIGTERM contract keeps it serving until the app has exited")

        let install = try #require(container("tandem-init", in: spec, list: "initContainers"))
        #expect(install["args"] == ["install", "/tandem/bin"])
        #expect(install["image"] == proxy["image"])
        #expect(install["securityContext"] == proxy["securityContext"])
        #expect(install["volumeMounts"] == [["name": "tandem-bin", "mountPath": "/tandem/bin"]])

        let app = try #require(container("app", in: spec))
        #expect(app["command"] == [
            "/tandem/bin/tandem", "supervise", "--ready-url", "http://127.0.0.1:15000/ready",
            "--quit-url", "http://127.0.0.1:15000/quitquitquit", "--quit-on", "stop", "--", "/app", "--port", "8080",
        ])
        #expect(app["args"] == ["-v"])
        let readOnlyMount: JSON = ["name": "tandem-bin", "mountPath": "/tandem/bin", "readOnly": true]
        #expect(app["volumeMounts"] == [readOnlyMount])
        let worker = try #require(container("worker", in: spec))
        #expect(worker["command"] == nil)
        #expect(worker["volumeMounts"] == [readOnlyMount])
        #expect(object["metadata"]?["annotations"]?["kubectl.kubernetes.io/default-container"] == "app")
    }

    @Test func legacyFollowsConfiguredPortsAndPaths() throws {
        let injector = Injector(config: try InjectionConfig(values: [
            "proxy": ["adminPort": 9901, "startTimeoutSeconds": 30, "drainSeconds": 20],
            "injection": ["binaryMountPath": "/opt/tandem"],
        ]))
        let (object, _) = try injectOne(Fixtures.simplePod(), injector: injector, lifecycle: .legacy)
        let app = container("app", in: object["spec"])
        #expect(app?["command"]?.arrayValue?.prefix(6) == [
            "/opt/tandem/tandem", "supervise", "--ready-url", "http://127.0.0.1:9901/ready",
            "--quit-url", "http://127.0.0.1:9901/quitquitquit",
        ])
        let proxy = try #require(container("tandem-proxy", in: object["spec"]))
        #expect(proxy["lifecycle"]?["postStart"]?["exec"]?["command"]?.arrayValue?.suffix(3) == ["http://127.0.0.1:9901/ready", "--timeout", "30"])
        #expect(env("TANDEM_DRAIN_SECONDS", of: proxy) == "20")
        #expect(container("tandem-init", in: object["spec"], list: "initContainers")?["args"] == ["install", "/opt/tandem"])
    }

    /// A Job with two wrapped apps: the first to finish must not take the proxy from the other.
    @Test func legacyAppsNameEachOtherInTheirQuit() throws {
        let pod = Fixtures.pod(spec: ["restartPolicy": "Never", "containers": [
            ["name": "load", "image": "x", "command": ["/load"]],
            ["name": "report", "image": "y", "command": ["/report"]],
            ["name": "sidecar-without-command", "image": "z"],
        ]])
        let (object, _) = try injectOne(pod, injector: Injector(), lifecycle: .legacy)
        for name in ["load", "report"] {
            let command = try #require(container(name, in: object["spec"])?["command"]?.arrayValue)
            let url = try #require(command.firstIndex(of: "--quit-url").map { command[$0 + 1] })
            #expect(url == .string("http://127.0.0.1:15000/quitquitquit?app=\(name)&apps=load,report"))
        }
    }

    @Test func legacyNeedsNamedAppContainers() {
        let pod = Fixtures.pod(spec: ["containers": [["image": "x", "command": ["/x"]]]])
        #expect(injectionError { _ = try Injector().inject(object: pod, lifecycle: .legacy) }
            == InjectionError(pointer: ["spec", "containers", "0", "name"], message: "spec.containers[0] has no name"))
    }

    @Test func emptyCommandIsNotWrapped() throws {
        let pod = Fixtures.pod(spec: ["containers": [Fixtures.container("app", extra: ["command": []])]])
        let (object, report) = try injectOne(pod, lifecycle: .legacy)
        #expect(container("app", in: object["spec"])?["command"] == [])
        #expect(report.warnings.count == 1)
    }

    @Test func defaultContainerIsKeptWhenPresent() throws {
        let pod = Fixtures.pod(annotations: ["kubectl.kubernetes.io/default-container": "worker"], spec: [
            "containers": [Fixtures.container("app"), Fixtures.container("worker")],
        ])
        let (object, _) = try injectOne(pod, lifecycle: .legacy)
        #expect(object["metadata"]?["annotations"]?["kubectl.kubernetes.io/default-container"] == "worker")
        let back = try Injector().uninject(object: object).object
        #expect(orderedEqual(back, pod))
    }
}
