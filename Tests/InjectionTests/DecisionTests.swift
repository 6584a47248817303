import Document
@testable import Injection
import Kubernetes
import Testing

@Suite struct DecisionTests {
    @Test func reasonCodesAreStable() {
        #expect(InjectionReason.allCases.map(\.rawValue) == [
            "injected", "already_injected", "opted_out_annotation", "opted_out_label", "host_network",
            "foreign_sidecar", "namespace_excluded", "injection_disabled", "not_a_workload", "uninjected", "not_injected",
        ])
    }

    /// Without explanations (`tandem inject` without `--explain`) the outcome is the same.
    @Test func explanationsAreOnlyAFormattingChoice() throws {
        var quiet = Injector()
        quiet.keepsExplanations = false
        for pod in [Fixtures.simplePod(), Fixtures.simplePod(annotations: ["tandem.io/inject": "disabled"])] {
            let full = try Injector().inject(object: pod)
            let terse = try quiet.inject(object: pod)
            #expect(!full.workloads[0].explanation.isEmpty)
            #expect(terse.workloads[0].explanation.isEmpty)
            var expected = full
            expected.workloads[0].explanation = []
            #expect(terse == expected)
            let undone = try quiet.uninject(object: terse.object)
            #expect(undone.object == pod)
            #expect(undone.workloads[0].explanation.isEmpty)
        }
    }

    @Test func injected() throws {
        let (object, report) = try injectOne(Fixtures.simplePod())
        #expect(report.reason == .injected)
        #expect(report.kind == "Pod")
        #expect(report.name == "web")
        #expect(report.namespace == "shop")
        #expect(report.mode == .native)
        #expect(report.warnings.isEmpty)
        #expect(report.templatePointer == [])
        #expect(report.explanation == [
            "injection is enabled",
            "namespace \"shop\" is not excluded",
            "no tandem.io/inject opt-out",
            "hostNetwork is not set",
            "no other mesh's sidecar found",
            "lifecycle auto from injection.mode: Kubernetes version unknown → native",
            "injected tandem-proxy in native mode",
        ])
        #expect(object != Fixtures.simplePod())
    }

    @Test func alreadyInjected() throws {
        let (once, _) = try injectOne(Fixtures.simplePod())
        let (twice, report) = try injectOne(once)
        #expect(report.reason == .alreadyInjected)
        #expect(orderedEqual(twice, once))
        #expect(report.explanation.first == "found a previous native injection; deciding from the template without it")
        #expect(report.explanation.last == "the existing injection matches the current settings: nothing to change")
    }

    @Test func optedOutByAnnotation() throws {
        let pod = Fixtures.simplePod(annotations: ["tandem.io/inject": "disabled", "tandem.io/proxy-imag": "typo is ignored"])
        let (object, report) = try injectOne(pod)
        #expect(report.reason == .optedOutAnnotation)
        #expect(orderedEqual(object, pod))
        #expect(report.explanation.last == "annotation tandem.io/inject is \"disabled\"")
    }

    @Test func optedOutByLabel() throws {
        let pod = Fixtures.simplePod(labels: ["tandem.io/inject": "disabled"])
        let (object, report) = try injectOne(pod)
        #expect(report.reason == .optedOutLabel)
        #expect(orderedEqual(object, pod))
    }

    @Test func hostNetwork() throws {
        let pod = Fixtures.pod(spec: ["hostNetwork": true, "containers": [Fixtures.container("agent")]])
        let (object, report) = try injectOne(pod)
        #expect(report.reason == .hostNetwork)
        #expect(orderedEqual(object, pod))
    }

    @Test(arguments: [
        ("containers", "istio-proxy"), ("containers", "linkerd-proxy"), ("containers", "envoy"),
        ("initContainers", "istio-init"), ("initContainers", "linkerd-init"), ("initContainers", "linkerd-proxy"),
    ])
    func foreignSidecar(list: String, name: String) throws {
        var spec = JSONObject([("containers", [Fixtures.container("app")])])
        spec[list] = .array((spec[list]?.arrayValue ?? []) + [Fixtures.container(name)])
        let pod = Fixtures.pod(spec: .object(spec))
        let (object, report) = try injectOne(pod)
        #expect(report.reason == .foreignSidecar)
        #expect(report.explanation.last == "container \"\(name)\" belongs to another mesh's sidecar")
        #expect(orderedEqual(object, pod))
    }

    @Test func foreignSidecarPrecedence() {
        func found(init initNames: [String], app appNames: [String]) -> String? {
            let spec = JSONObject([
                ("initContainers", .array(initNames.map { Fixtures.container($0) })),
                ("containers", .array(appNames.map { Fixtures.container($0) })),
            ])
            return Injector.foreignSidecar(among: Injector.PodSurvey(spec).names)
        }
        // A container beats any init container; an init container named for a sidecar beats an
        // earlier one named for an init step; otherwise the first of a kind wins.
        #expect(found(init: ["istio-init", "envoy"], app: ["app", "kuma-sidecar", "istio-proxy"]) == "kuma-sidecar")
        #expect(found(init: ["istio-init", "envoy", "istio-proxy"], app: ["app"]) == "envoy")
        #expect(found(init: ["app-init", "kuma-init", "istio-init"], app: ["app"]) == "kuma-init")
        #expect(found(init: ["app-init"], app: ["app", "istio-init"]) == nil)
    }

    /// Every listed name is found whatever its length (names of other lengths are passed over
    /// unread), and a name of a listed length is compared, not taken.
    @Test func foreignSidecarFindsEveryListedName() {
        func found(init initNames: [String], app appNames: [String]) -> String? {
            let spec = JSONObject([
                ("initContainers", .array(initNames.map { Fixtures.container($0) })),
                ("containers", .array(appNames.map { Fixtures.container($0) })),
            ])
            return Injector.foreignSidecar(among: Injector.PodSurvey(spec).names)
        }
        for name in Injector.foreignContainers {
            #expect(found(init: [], app: ["app", name]) == name)
        }
        for name in Injector.foreignInitContainers {
            #expect(found(init: ["setup", name], app: ["app"]) == name)
        }
        #expect(found(init: ["istio-inix"], app: ["istio-proxx", "envoz"]) == nil)
    }

    @Test func namespaceExcluded() throws {
        let (_, byArgument) = try injectOne(Fixtures.simplePod(), namespace: "kube-system")
        #expect(byArgument.reason == .namespaceExcluded)
        #expect(byArgument.namespace == "kube-system")
        let pod = Fixtures.pod(namespace: "kube-public", spec: ["containers": [Fixtures.container("app")]])
        let (object, byObject) = try injectOne(pod)
        #expect(byObject.reason == .namespaceExcluded)
        #expect(orderedEqual(object, pod))
        let custom = Injector(config: try InjectionConfig(values: ["injection": ["excludedNamespaces": ["shop"]]]))
        #expect(try injectOne(Fixtures.simplePod(), injector: custom).1.reason == .namespaceExcluded)
        #expect(try injectOne(Fixtures.simplePod(), injector: custom, namespace: "other").1.reason == .injected)
    }

    @Test func injectionDisabled() throws {
        let off = Injector(config: try InjectionConfig(values: ["injection": ["enabled": false]]))
        let (object, report) = try injectOne(Fixtures.simplePod(), injector: off)
        #expect(report.reason == .injectionDisabled)
        #expect(report.explanation == ["injection is switched off (injection.enabled: false)"])
        #expect(orderedEqual(object, Fixtures.simplePod()))
    }

    @Test func notAWorkload() throws {
        let service: JSON = ["apiVersion": "v1", "kind": "Service", "metadata": ["name": "web"], "spec": ["ports": [["port": 80]]]]
        let (object, report) = try injectOne(service)
        #expect(report.reason == .notAWorkload)
        #expect(report.kind == "Service")
        #expect(report.name == "web")
        #expect(report.explanation == ["Service has no pod template"])
        #expect(orderedEqual(object, service))
        #expect(try injectOne(["metadata": ["name": "x"]]).1.explanation == ["the document has no kind"])
        #expect(try injectOne(.null).1.reason == .notAWorkload)
    }

    @Test func uninjectReasons() throws {
        let injector = Injector()
        let plain = try injector.uninject(object: Fixtures.simplePod())
        #expect(plain.workloads.map(\.reason) == [.notInjected])
        #expect(!plain.changed)
        let injected = try injector.inject(object: Fixtures.simplePod())
        #expect(injected.changed)
        let removed = try injector.uninject(object: injected.object)
        #expect(removed.workloads.map(\.reason) == [.uninjected])
        #expect(removed.workloads.first?.mode == .native)
        #expect(removed.changed)
        #expect(try injector.uninject(object: ["kind": "ConfigMap"]).workloads.map(\.reason) == [.notAWorkload])
    }

    @Test func skipKeepsAPreviousInjectionAndSaysSo() throws {
        let (injected, _) = try injectOne(Fixtures.simplePod())
        var optedOut = injected
        ObjectPath.modify(at: ["metadata", "annotations"], in: &optedOut) { annotations in
            annotations.modifyObject { $0["tandem.io/inject"] = "disabled" }
        }
        let (object, report) = try injectOne(optedOut)
        #expect(report.reason == .optedOutAnnotation)
        #expect(orderedEqual(object, optedOut))
        #expect(report.warnings == ["the template still carries a previous injection; run uninject to remove it"])
    }
}
