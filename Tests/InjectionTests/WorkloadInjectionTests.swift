import Document
@testable import Injection
import Kubernetes
import Testing

@Suite struct WorkloadInjectionTests {
    static let spec: JSON = ["containers": [Fixtures.container("app", command: ["/app"], ports: [8080])]]

    static func workload(_ kind: WorkloadKind) -> JSON {
        switch kind {
        case .pod: return Fixtures.pod(spec: spec)
        case .cronJob: return Fixtures.cronJob(spec: spec)
        default:
            return ["apiVersion": "apps/v1", "kind": .string(kind.rawValue), "metadata": ["name": "web"],
                    "spec": ["template": ["metadata": ["labels": ["app": "web"]], "spec": spec]]]
        }
    }

    @Test(arguments: WorkloadKind.allCases)
    func everyKind(kind: WorkloadKind) throws {
        let object = Self.workload(kind)
        let (injected, report) = try injectOne(object)
        #expect(report.reason == .injected)
        #expect(report.kind == kind.rawValue)
        #expect(report.templatePointer == kind.templatePath)
        let template = try #require(ObjectPath.value(at: kind.templatePath, in: injected))
        #expect(names(template["spec"]?["initContainers"]) == ["tandem-proxy"])
        #expect(PodValidation.problems(in: template["spec"] ?? .null) == [])
        // Outside the template nothing changes.
        var outside = injected
        ObjectPath.modify(at: kind.templatePath, in: &outside) { $0 = .null }
        var original = object
        ObjectPath.modify(at: kind.templatePath, in: &original) { $0 = .null }
        #expect(orderedEqual(outside, original))
        #expect(orderedEqual(try Injector().uninject(object: injected).object, object))
    }

    @Test func listsRecurseAndReportEachItem() throws {
        let list: JSON = ["apiVersion": "v1", "kind": "List", "items": [
            Self.workload(.deployment),
            ["apiVersion": "v1", "kind": "Service", "metadata": ["name": "web"]],
            ["kind": "List", "items": [Self.workload(.cronJob)]],
            Fixtures.simplePod(annotations: ["tandem.io/inject": "disabled"]),
        ]]
        let report = try Injector().inject(object: list)
        #expect(report.workloads.map(\.reason) == [.injected, .notAWorkload, .injected, .optedOutAnnotation])
        #expect(report.workloads.map(\.templatePointer) == [
            ["items", "0", "spec", "template"], ["items", "1"],
            ["items", "2", "items", "0", "spec", "jobTemplate", "spec", "template"], ["items", "3"],
        ])
        #expect(names(value(report.object, "items", "0", "spec", "template", "spec", "initContainers")) == ["tandem-proxy"])
        #expect(orderedEqual(try Injector().uninject(object: report.object).object, list))
    }

    @Test func typedListItemsMayOmitTheirKind() throws {
        var item = Self.workload(.deployment)
        item.modifyObject { $0["kind"] = nil; $0["apiVersion"] = nil }
        let list: JSON = ["apiVersion": "apps/v1", "kind": "DeploymentList", "items": [item]]
        let report = try Injector().inject(object: list)
        #expect(report.workloads.map(\.kind) == ["Deployment"])
        #expect(report.workloads.map(\.reason) == [.injected])
    }

    @Test func missingTemplatesAreErrorsWithPointers() {
        let deployment: JSON = ["kind": "Deployment", "metadata": ["name": "web"], "spec": ["replicas": 1]]
        #expect(injectionError { _ = try Injector().inject(object: deployment) }
            == InjectionError(pointer: ["spec"], message: "Deployment \"web\": spec.template is missing"))

        let noContainers: JSON = ["kind": "List", "items": [
            ["kind": "Job", "metadata": ["name": "once"], "spec": ["template": ["spec": ["restartPolicy": "Never"]]]],
        ]]
        #expect(injectionError { _ = try Injector().uninject(object: noContainers) }
            == InjectionError(pointer: ["items", "0", "spec", "template", "spec"],
                              message: "Job \"once\": spec.template.spec.containers is missing"))

        let pod: JSON = ["kind": "Pod", "metadata": ["name": "p"]]
        #expect(injectionError { _ = try Injector().inject(object: pod) }?.message == "Pod \"p\": spec is missing")
    }

    @Test func errorsInsideListItemsPointFromTheRoot() {
        let list: JSON = ["kind": "List", "items": [
            Fixtures.simplePod(),
            Self.workloadWithAnnotation("tandem.io/log-level", "loud"),
        ]]
        #expect(injectionError { _ = try Injector().inject(object: list) }
            == InjectionError(pointer: ["items", "1", "spec", "template", "metadata", "annotations", "tandem.io/log-level"],
                              message: "annotation tandem.io/log-level: \"loud\" must be trace, debug, info, warn or error"))
    }

    static func workloadWithAnnotation(_ key: String, _ value: String) -> JSON {
        Fixtures.deployment(templateMetadata: ["annotations": .object(JSONObject([(key, .string(value))]))], spec: spec)
    }

    @Test func generateNamePodsFromControllers() throws {
        let pod: JSON = ["kind": "Pod", "metadata": ["generateName": "web-7d9f-"], "spec": Self.spec]
        let (_, report) = try injectOne(pod, namespace: "shop")
        #expect(report.name == "web-7d9f-*")
        #expect(report.namespace == "shop")
        #expect(report.reason == .injected)
    }
}
