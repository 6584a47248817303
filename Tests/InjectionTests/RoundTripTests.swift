import Document
@testable import Injection
import Kubernetes
import Testing

@Suite struct RoundTripTests {
    static let cases: [(Int, SidecarMode)] = Fixtures.roundTripInputs.indices.flatMap { index in
        SidecarMode.allCases.map { (index, $0) }
    }

    static func mode(_ mode: SidecarMode) -> LifecycleMode { mode == .native ? .native : .legacy }

    @Test(arguments: cases)
    func uninjectUndoesInjectExactly(index: Int, mode: SidecarMode) throws {
        let input = Fixtures.roundTripInputs[index]
        let injector = Injector()
        let injected = try injector.inject(object: input, lifecycle: Self.mode(mode))
        #expect(injected.workloads.map(\.reason) == [.injected])
        #expect(injected.workloads.first?.mode == mode)
        let restored = try injector.uninject(object: injected.object)
        #expect(restored.object == input)
        #expect(orderedEqual(restored.object, input), "\(text(restored.object))\n\(text(input))")
    }

    @Test(arguments: cases)
    func injectingTwiceChangesNothing(index: Int, mode: SidecarMode) throws {
        let injector = Injector()
        let once = try injector.inject(object: Fixtures.roundTripInputs[index], lifecycle: Self.mode(mode))
        let twice = try injector.inject(object: once.object, lifecycle: Self.mode(mode))
        #expect(twice.workloads.map(\.reason) == [.alreadyInjected])
        #expect(!twice.changed)
        #expect(orderedEqual(twice.object, once.object))
    }

    @Test(arguments: cases)
    func injectedPodsAreValid(index: Int, mode: SidecarMode) throws {
        let report = try Injector().inject(object: Fixtures.roundTripInputs[index], lifecycle: Self.mode(mode))
        let pointer = try #require(report.workloads.first?.templatePointer)
        let spec = try #require(ObjectPath.value(at: pointer + ["spec"], in: report.object))
        let claims = (report.object["spec"]?["volumeClaimTemplates"]?.arrayValue ?? []).compactMap { $0["metadata"]?["name"]?.stringValue }
        #expect(PodValidation.problems(in: spec, providedVolumes: Set(claims)) == [])
    }

    @Test(arguments: cases)
    func switchingModeReinjects(index: Int, mode: SidecarMode) throws {
        let input = Fixtures.roundTripInputs[index]
        let other: SidecarMode = mode == .native ? .legacy : .native
        let injector = Injector()
        let first = try injector.inject(object: input, lifecycle: Self.mode(mode))
        let second = try injector.inject(object: first.object, lifecycle: Self.mode(other))
        #expect(second.workloads.map(\.reason) == [.injected])
        #expect(second.workloads.first?.explanation.last == "replaced the previous injection with a \(other.rawValue) one")
        let direct = try injector.inject(object: input, lifecycle: Self.mode(other))
        #expect(orderedEqual(second.object, direct.object))
        #expect(orderedEqual(try injector.uninject(object: second.object).object, input))
    }

    /// Native mode with a drain delay also gives every app container a preStop `sleep`; uninject
    /// takes exactly that away.
    @Test(arguments: Fixtures.roundTripInputs.indices)
    func drainDelayPreStopsAreUndoneExactly(index: Int) throws {
        let injector = Injector(config: try InjectionConfig(values: ["proxy": ["drainDelaySeconds": 5]]))
        let input = Fixtures.roundTripInputs[index]
        let injected = try injector.inject(object: input, lifecycle: .native, kubeVersion: KubernetesVersion("1.33"))
        let pointer = try #require(injected.workloads.first?.templatePointer)
        let containers = try #require(ObjectPath.value(at: pointer + ["spec", "containers"], in: injected.object)?.arrayValue)
        #expect(containers.allSatisfy { $0["lifecycle"]?["preStop"] == ["sleep": ["seconds": 5]] })
        #expect(orderedEqual(try injector.uninject(object: injected.object).object, input))
    }

    @Test func changedAnnotationsReinject() throws {
        let injector = Injector()
        let first = try injector.inject(object: Fixtures.simplePod(annotations: ["team": "a"]))
        var edited = first.object
        ObjectPath.modify(at: ["metadata", "annotations"], in: &edited) { annotations in
            annotations.modifyObject { $0["tandem.io/proxy-cpu-limit"] = "2" }
        }
        let second = try injector.inject(object: edited)
        #expect(second.workloads.map(\.reason) == [.injected])
        let proxy = container("tandem-proxy", in: second.object["spec"], list: "initContainers")
        #expect(proxy?["resources"]?["limits"]?["cpu"] == "2")
        #expect(names(second.object["spec"]?["initContainers"]) == ["tandem-proxy"])
        // Uninjecting keeps the user's new annotation and removes only ours.
        let expected = Fixtures.simplePod(annotations: ["team": "a", "tandem.io/proxy-cpu-limit": "2"])
        #expect(orderedEqual(try injector.uninject(object: second.object).object, expected))
    }

    /// The apiserver defaults fields of our containers before a webhook sees the pod; that alone
    /// must not count as a different injection.
    @Test(arguments: SidecarMode.allCases)
    func apiserverDefaultsDoNotTriggerReinjection(mode: SidecarMode) throws {
        let injector = Injector()
        let injected = try injector.inject(object: Fixtures.simplePod(), lifecycle: Self.mode(mode)).object
        var defaulted = injected
        let list = mode == .native ? "initContainers" : "containers"
        ObjectPath.modify(at: ["spec", list, "0"], in: &defaulted) { proxy in
            proxy.modifyObject { proxy in
                proxy["terminationMessagePath"] = "/dev/termination-log"
                proxy["terminationMessagePolicy"] = "File"
                proxy.modifyMember("readinessProbe") { probe in
                    probe.modifyObject { $0["timeoutSeconds"] = 1; $0["successThreshold"] = 1; $0["failureThreshold"] = 3 }
                }
            }
        }
        let again = try injector.inject(object: defaulted, lifecycle: Self.mode(mode))
        #expect(again.workloads.map(\.reason) == [.alreadyInjected])
        #expect(orderedEqual(again.object, defaulted))
        // The fingerprint does notice a real change in what we would add.
        let other = Injector(config: try InjectionConfig(values: ["proxy": ["logLevel": "debug"]]))
        #expect(try other.inject(object: defaulted, lifecycle: Self.mode(mode)).workloads.map(\.reason) == [.injected])
    }

    @Test func changedConfigReinjects() throws {
        let first = try Injector().inject(object: Fixtures.simplePod(), lifecycle: .legacy)
        let newImage = Injector(config: try InjectionConfig(values: ["proxy": ["image": "ghcr.io/tandem-mesh/tandem:0.2.0"]]))
        let second = try newImage.inject(object: first.object, lifecycle: .legacy)
        #expect(second.workloads.map(\.reason) == [.injected])
        let spec = second.object["spec"]
        #expect(container("tandem-proxy", in: spec)?["image"] == "ghcr.io/tandem-mesh/tandem:0.2.0")
        #expect(container("tandem-init", in: spec, list: "initContainers")?["image"] == "ghcr.io/tandem-mesh/tandem:0.2.0")
        // The app's command was wrapped once, not twice.
        #expect(container("app", in: spec)?["command"]?.arrayValue?.filter { $0 == "supervise" }.count == 1)
        #expect(orderedEqual(try newImage.uninject(object: second.object).object, Fixtures.simplePod()))
    }

    @Test func userEditsAfterInjectionSurviveUninject() throws {
        let injector = Injector()
        let injected = try injector.inject(object: Fixtures.simplePod(), lifecycle: .legacy).object
        var edited = injected
        ObjectPath.modify(at: ["spec"], in: &edited) { spec in
            spec.modifyObject { $0["nodeSelector"] = ["disk": "ssd"] }
        }
        let restored = try injector.uninject(object: edited).object
        #expect(restored["spec"]?["nodeSelector"] == ["disk": "ssd"])
        #expect(names(restored["spec"]?["containers"]) == ["app"])
        #expect(restored["spec"]?["volumes"] == nil)
    }

    @Test(arguments: SidecarMode.allCases)
    func largePodsRoundTrip(mode: SidecarMode) throws {
        let variables: [JSON] = (0..<1500).map { ["name": .string("VAR_\($0)"), "value": .string(String(repeating: "x", count: 32))] }
        let pod = Fixtures.pod(spec: ["containers": [
            Fixtures.container("app", command: ["/app"], ports: [8080], extra: ["env": .array(variables)]),
        ]])
        let injector = Injector()
        let injected = try injector.inject(object: pod, lifecycle: Self.mode(mode))
        #expect(container("app", in: injected.object["spec"])?["env"]?.arrayValue?.count == 1500)
        #expect(orderedEqual(try injector.uninject(object: injected.object).object, pod))
    }

    @Test func statusRecordsWhatWasAdded() throws {
        let injected = try Injector().inject(object: Fixtures.simplePod(), lifecycle: .legacy).object
        let text = try #require(injected["metadata"]?["annotations"]?["tandem.io/status"]?.stringValue)
        var status = try JSONReader.parse(text)
        let fingerprint = try #require(status["fingerprint"]?.stringValue)
        #expect(fingerprint.count == 16 && fingerprint.allSatisfy(\.isHexDigit))
        status.modifyObject { $0["fingerprint"] = Optional<JSON>.none }
        #expect(status == [
            "version": 1, "mode": "legacy", "image": "ghcr.io/tandem-mesh/tandem:0.1.0",
            "containers": ["tandem-proxy"], "initContainers": ["tandem-init"], "volumes": ["tandem-bin"],
            "wrapped": [["container": "app", "command": ["/app", "--serve"]]],
            "volumeMounts": [["container": "app", "volume": "tandem-bin", "list": "absent"]],
            "annotations": ["kubectl.kubernetes.io/default-container"],
            "created": [["path": "/spec/initContainers", "was": "absent"], ["path": "/spec/volumes", "was": "absent"],
                        ["path": "/metadata/annotations", "was": "absent"]],
        ])
        #expect(!text.contains(" "))
    }
}
