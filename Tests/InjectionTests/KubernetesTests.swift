import Document
import Kubernetes
import Testing

@Suite struct QuantityTests {
    @Test(arguments: ["100m", "0.5", "128Mi", "1G", "1e3", "1", "2Gi", "500k", "1E", ".5", "+1", "1.5", "3E-2", "10Ki", "0"])
    func accepts(_ text: String) {
        #expect(ResourceQuantity(text) != nil, "\(text)")
    }

    @Test(arguments: ["abc", "-1", "1.5.3", "10mi", "", "m", "1 Gi", "Mi", "1e", "1ee3", "0x10", "1KiB", "."])
    func rejects(_ text: String) {
        #expect(ResourceQuantity(text) == nil, "\(text)")
    }

    @Test func comparesAcrossSuffixes() throws {
        let values = try ["100m", "0.5", "1", "1e3", "1Ki", "1M", "1Mi"].map { try #require(ResourceQuantity($0)).value }
        #expect(values == values.sorted())
        #expect(ResourceQuantity("128Mi")?.value == 134_217_728)
        #expect(ResourceQuantity("100m")?.value == 0.1)
    }
}

@Suite struct KubernetesVersionTests {
    @Test func parsesServerVersions() {
        #expect(KubernetesVersion("1.28") == KubernetesVersion(major: 1, minor: 28))
        #expect(KubernetesVersion("v1.29.3") == KubernetesVersion(major: 1, minor: 29, patch: 3))
        #expect(KubernetesVersion("1.30.0-eks-abc") == KubernetesVersion(major: 1, minor: 30))
        #expect(KubernetesVersion("v1.28.4+k3s1") == KubernetesVersion(major: 1, minor: 28, patch: 4))
    }

    @Test(arguments: ["", "1", "v", "1.x", "1..2", "1.2.3.4", "latest", "v1.-2"])
    func rejects(_ text: String) {
        #expect(KubernetesVersion(text) == nil)
    }

    @Test func orders() {
        #expect(KubernetesVersion("1.28.9")! < KubernetesVersion("1.29")!)
        #expect(KubernetesVersion("1.9")! < KubernetesVersion("1.10")!)
    }
}

@Suite struct WorkloadTests {
    @Test func templatePaths() {
        #expect(WorkloadKind.pod.templatePath == [])
        for kind in [WorkloadKind.deployment, .statefulSet, .daemonSet, .replicaSet, .replicationController, .job] {
            #expect(kind.templatePath == ["spec", "template"])
        }
        #expect(WorkloadKind.cronJob.templatePath == ["spec", "jobTemplate", "spec", "template"])
    }

    @Test func shapes() {
        func shape(_ object: JSON, impliedKind: String? = nil) -> ResourceShape {
            ResourceShape(object, kind: ObjectHeader(object).kind ?? impliedKind)
        }
        #expect(shape(["kind": "Deployment"]) == .workload(.deployment))
        #expect(shape(["kind": "List", "items": []]) == .list(itemKind: nil))
        #expect(shape(["kind": "DeploymentList", "items": []]) == .list(itemKind: "Deployment"))
        #expect(shape(["kind": "ServiceList"]) == .other)
        #expect(shape(["kind": "Service"]) == .other)
        #expect(shape(["metadata": [:]]) == .other)
        #expect(shape(["metadata": [:]], impliedKind: "Pod") == .workload(.pod))
        #expect(shape(["kind": "Job"], impliedKind: "Pod") == .workload(.job), "the object's own kind wins")
    }

    @Test func missingTemplateNamesThePath() throws {
        let deployment: JSON = ["kind": "Deployment", "metadata": ["name": "web"], "spec": ["replicas": 1]]
        let error = try #require(throws: TemplateError.self) { try WorkloadKind.deployment.templateTokens(in: deployment) }
        #expect(error.message == "Deployment \"web\": spec.template is missing")
        #expect(error.existingPath == ["spec"])

        let pod: JSON = ["kind": "Pod", "metadata": ["generateName": "web-"], "spec": ["containers": "app"]]
        let podError = try #require(throws: TemplateError.self) { try WorkloadKind.pod.templateTokens(in: pod) }
        #expect(podError.message == "Pod \"web-*\": spec.containers must be an array")

        let cron: JSON = ["kind": "CronJob", "metadata": ["name": "n"], "spec": ["jobTemplate": ["spec": [:]]]]
        let cronError = try #require(throws: TemplateError.self) { try WorkloadKind.cronJob.templateTokens(in: cron) }
        #expect(cronError.message == "CronJob \"n\": spec.jobTemplate.spec.template is missing")
        #expect(cronError.existingPath == ["spec", "jobTemplate", "spec"])
    }

    @Test func headerAndMetadataHelpers() {
        let object: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["generateName": "web-", "namespace": "shop"]]
        let header = ObjectHeader(object)
        #expect(header.kind == "Pod")
        #expect(header.displayName == "web-*")
        #expect(header.reference == "Pod \"web-*\"")
        #expect(header.namespace == "shop")

        var metadata = JSONObject()
        Metadata.setAnnotation("missing", to: nil, in: &metadata)
        #expect(metadata.keys == [], "removing from no map makes none")
        metadata["labels"] = ["app": "web"]
        Metadata.setAnnotation("a", to: "1", in: &metadata)
        #expect(Metadata.annotation("a", in: metadata) == "1")
        #expect(Metadata.label("app", in: metadata) == "web")
        Metadata.setAnnotation("a", to: nil, in: &metadata)
        #expect(metadata["annotations"] == [:])
        #expect(metadata.keys == ["labels", "annotations"])
    }

    @Test func objectPathEditsInPlace() {
        var document: JSON = ["items": [["a": 1], ["a": 2]]]
        let result = ObjectPath.modify(at: ["items", "1", "a"], in: &document) { value in value = 3; return "done" }
        #expect(result == "done")
        #expect(ObjectPath.value(at: ["items", "1", "a"], in: document) == 3)
        #expect(ObjectPath.modify(at: ["items", "2"], in: &document) { _ in } == nil)
        #expect(ObjectPath.value(at: ["items", "x"], in: document) == nil)
    }
}
