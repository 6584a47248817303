import Document
@testable import Injection
import Kubernetes
import Testing

@Suite struct AnnotationTests {
    func proxy(_ annotations: JSON, lifecycle: LifecycleMode = .native, ports: [Int] = [8080]) throws -> (JSON?, WorkloadReport) {
        let pod = Fixtures.pod(annotations: annotations, spec: ["containers": [Fixtures.container("app", command: ["/app"], ports: ports)]])
        let (object, report) = try injectOne(pod, lifecycle: lifecycle)
        let list = lifecycle == .native ? "initContainers" : "containers"
        return (container(TandemNames.proxyContainer, in: object["spec"], list: list), report)
    }

    @Test func injectEnabledInjects() throws {
        let (proxy, report) = try proxy(["tandem.io/inject": "enabled"])
        #expect(report.reason == .injected)
        #expect(proxy != nil)
    }

    @Test func proxyImage() throws {
        let (proxy, _) = try proxy(["tandem.io/proxy-image": "registry.local/tandem:canary"])
        #expect(proxy?["image"] == "registry.local/tandem:canary")
        let (legacy, _) = try injectOne(Fixtures.simplePod(annotations: ["tandem.io/proxy-image": "registry.local/tandem:canary"]),
                                        lifecycle: .legacy)
        #expect(container(TandemNames.initContainer, in: legacy["spec"], list: "initContainers")?["image"] == "registry.local/tandem:canary")
    }

    /// Plans share the config's settings unless the pod overrides one: one injector (one
    /// artifacts cache) must still tell an overridden plan from a shared one, either way round.
    @Test func overridesAreNotSharedBetweenPods() throws {
        let injector = Injector()
        let canary: JSON = ["tandem.io/proxy-image": "registry.local/tandem:canary"]
        let images = try [canary, [:], canary, ["tandem.io/proxy-image": .string(InjectionConfig.defaults.proxy.image)], [:]].map { annotations in
            let pod = Fixtures.pod(annotations: annotations, spec: ["containers": [Fixtures.container("app", command: ["/app"])]])
            let (object, _) = try injectOne(pod, injector: injector, lifecycle: .native)
            return container(TandemNames.proxyContainer, in: object["spec"], list: "initContainers")?["image"]
        }
        let standard = JSON.string(InjectionConfig.defaults.proxy.image)
        #expect(images == ["registry.local/tandem:canary", standard, "registry.local/tandem:canary", standard, standard])
    }

    @Test func resources() throws {
        let (proxy, _) = try proxy([
            "tandem.io/proxy-cpu-request": "100m", "tandem.io/proxy-cpu-limit": "2",
            "tandem.io/proxy-memory-request": "128Mi", "tandem.io/proxy-memory-limit": "1Gi",
        ])
        #expect(proxy?["resources"] == ["requests": ["cpu": "100m", "memory": "128Mi"], "limits": ["cpu": "2", "memory": "1Gi"]])
    }

    @Test func inboundPortsDefaultToTheAppsTCPPorts() throws {
        let pod = Fixtures.pod(spec: ["containers": [
            Fixtures.container("app", ports: [8080, 9090]),
            Fixtures.container("dns", extra: ["ports": [["containerPort": 53, "protocol": "UDP"], ["containerPort": 8080, "protocol": "TCP"]]]),
        ]])
        let (object, _) = try injectOne(pod)
        #expect(env("TANDEM_INBOUND_PORTS", of: container("tandem-proxy", in: object["spec"], list: "initContainers")) == "8080,9090")

        let (none, _) = try proxy([:], ports: [])
        #expect(env("TANDEM_INBOUND_PORTS", of: none) == nil)
    }

    @Test func portLists() throws {
        let (proxy, _) = try proxy([
            "tandem.io/inbound-ports": "80, 443,80", "tandem.io/exclude-inbound-ports": "9100",
            "tandem.io/exclude-outbound-ports": "5432,6379",
        ])
        #expect(env("TANDEM_INBOUND_PORTS", of: proxy) == "80,443")
        #expect(env("TANDEM_EXCLUDE_INBOUND_PORTS", of: proxy) == "9100")
        #expect(env("TANDEM_EXCLUDE_OUTBOUND_PORTS", of: proxy) == "5432,6379")
        let (empty, _) = try self.proxy(["tandem.io/inbound-ports": ""])
        #expect(env("TANDEM_INBOUND_PORTS", of: empty) == nil)
    }

    @Test func lifecycleAnnotationWinsOverTheCallerAndConfig() throws {
        let pod = Fixtures.simplePod(annotations: ["tandem.io/lifecycle": "legacy"])
        let (object, report) = try injectOne(pod, lifecycle: .native)
        #expect(report.mode == .legacy)
        #expect(names(object["spec"]?["containers"]).first == "tandem-proxy")
        #expect(report.explanation.contains("lifecycle legacy from annotation tandem.io/lifecycle"))
        let auto = Fixtures.simplePod(annotations: ["tandem.io/lifecycle": "auto"])
        #expect(try injectOne(auto, lifecycle: .legacy, kubeVersion: KubernetesVersion("1.30")).1.mode == .native)
    }

    @Test func drainSecondsAndDelay() throws {
        let (native, _) = try proxy(["tandem.io/drain-seconds": "10", "tandem.io/drain-delay": "5"])
        #expect(env("TANDEM_DRAIN_SECONDS", of: native) == "10")
        #expect(native?["lifecycle"] == ["preStop": ["sleep": ["seconds": 5]]])
        let (legacy, report) = try proxy(["tandem.io/drain-seconds": "10"], lifecycle: .legacy)
        #expect(env("TANDEM_DRAIN_SECONDS", of: legacy) == "10")
        #expect(legacy?["lifecycle"]?["preStop"] == nil, "the legacy proxy's own deadline is TANDEM_DRAIN_SECONDS")
        #expect(report.warnings.isEmpty)
    }

    @Test func logLevel() throws {
        for level in LogLevel.allCases {
            let (proxy, _) = try proxy(["tandem.io/log-level": .string(level.rawValue)])
            #expect(env("TANDEM_LOG_LEVEL", of: proxy) == level.rawValue)
        }
    }

    @Test(arguments: [
        ("tandem.io/inject", "yes", "\"yes\" must be enabled or disabled"),
        ("tandem.io/proxy-image", "", "\"\" is not an image reference"),
        ("tandem.io/proxy-image", "my image", "\"my image\" is not an image reference"),
        ("tandem.io/proxy-cpu-request", "1.5.3", "\"1.5.3\" is not a Kubernetes quantity"),
        ("tandem.io/proxy-cpu-limit", "lots", "\"lots\" is not a Kubernetes quantity"),
        ("tandem.io/proxy-memory-request", "10mi", "\"10mi\" is not a Kubernetes quantity"),
        ("tandem.io/proxy-memory-limit", "-1", "\"-1\" is not a Kubernetes quantity"),
        ("tandem.io/inbound-ports", "80,http", "\"80,http\" is not a comma-separated list of ports 1-65535"),
        ("tandem.io/exclude-inbound-ports", "0", "\"0\" is not a comma-separated list of ports 1-65535"),
        ("tandem.io/exclude-outbound-ports", "443,,80", "\"443,,80\" is not a comma-separated list of ports 1-65535"),
        ("tandem.io/lifecycle", "sidecar", "\"sidecar\" must be auto, native or legacy"),
        ("tandem.io/drain-seconds", "30s", "\"30s\" is not a whole number of seconds"),
        ("tandem.io/drain-delay", "-5", "\"-5\" is not a whole number of seconds"),
        ("tandem.io/drain-delay", "90000", "\"90000\" is not a whole number of seconds"),
        ("tandem.io/log-level", "verbose", "\"verbose\" must be trace, debug, info, warn or error"),
        ("tandem.io/proxy-imag", "x", "unknown annotation (did you mean tandem.io/proxy-image?)"),
        ("tandem.io/drain-second", "5", "unknown annotation (did you mean tandem.io/drain-seconds?)"),
        ("tandem.io/sidecar", "true", "unknown annotation"),
    ])
    func invalidValues(key: String, value: String, problem: String) {
        let deployment = Fixtures.deployment(
            templateMetadata: ["annotations": .object(JSONObject([(key, .string(value))]))],
            spec: ["containers": [Fixtures.container("app")]])
        let error = injectionError { _ = try Injector().inject(object: deployment) }
        #expect(error == InjectionError(pointer: ["spec", "template", "metadata", "annotations", key],
                                        message: "annotation \(key): \(problem)"))
    }

    @Test func otherMistakes() {
        let number = Fixtures.simplePod(annotations: ["tandem.io/drain-seconds": 5])
        #expect(injectionError { _ = try Injector().inject(object: number) }?.message
            == "annotation tandem.io/drain-seconds: expected a string, got a number")

        let inverted = Fixtures.simplePod(annotations: ["tandem.io/proxy-cpu-request": "2"])
        #expect(injectionError { _ = try Injector().inject(object: inverted) }
            == InjectionError(pointer: ["metadata", "annotations"], message: "annotations: proxy cpu request 2 exceeds its limit 1"))

        let label = Fixtures.simplePod(labels: ["tandem.io/inject": "yes"])
        #expect(injectionError { _ = try Injector().inject(object: label) }
            == InjectionError(pointer: ["metadata", "labels", "tandem.io/inject"],
                              message: "label tandem.io/inject: \"yes\" must be enabled or disabled"))

        let status = Fixtures.simplePod(annotations: ["tandem.io/status": "{}"])
        let expected = InjectionError(pointer: ["metadata", "annotations", "tandem.io/status"],
                                      message: "annotation tandem.io/status: not a status record this version of tandem wrote")
        #expect(injectionError { _ = try Injector().inject(object: status) } == expected)
        #expect(injectionError { _ = try Injector().uninject(object: status) } == expected)
    }

    @Test func annotationsOnTheDeploymentItselfAreNotThePods() throws {
        var deployment = Fixtures.deployment(spec: ["containers": [Fixtures.container("app")]])
        ObjectPath.modify(at: ["metadata"], in: &deployment) { metadata in
            metadata.modifyObject { $0["annotations"] = ["tandem.io/inject": "disabled"] }
        }
        let (_, report) = try injectOne(deployment)
        #expect(report.reason == .injected)
        #expect(report.warnings == [
            "annotation tandem.io/inject on the workload itself has no effect: put it on the pod template's metadata",
        ])
    }
}
