import Document
@testable import Injection
import Kubernetes
import Testing
import TestSupport

/// The checks every patch passes before it leaves, and reinvocation.
struct AdmissionProofTests {
    static let pod: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p"],
                            "spec": ["containers": [["name": "app", "image": "app:1"]]]]

    static func patch(_ text: String) throws -> JSONPatch { try JSONPatch(json: JSONReader.parse(text)) }

    @Test func aPatchThatDoesNotApplyIsRefused() throws {
        let problem = Admission.proofProblem(try Self.patch(#"[{"op":"remove","path":"/spec/volumes"}]"#), original: Self.pod, injected: Self.pod)
        #expect(problem?.hasPrefix("it does not apply: ") == true)
    }

    @Test func aPatchThatGivesAnotherPodIsRefused() throws {
        let patch = try Self.patch(#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#)
        #expect(Admission.proofProblem(patch, original: Self.pod, injected: Self.pod) == "applying it does not give the injected pod")
    }

    @Test func aPatchWithoutTheProxyIsRefused() throws {
        let patch = try Self.patch(#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#)
        #expect(Admission.proofProblem(patch, original: Self.pod, injected: try patch.apply(to: Self.pod))
            == "the patched pod has no tandem-proxy")
    }

    /// With `reinvocationPolicy: IfNeeded` the apiserver may call again with the injected pod.
    @Test func reinvocationWithTheInjectedPodChangesNothing() throws {
        let path = "kube-apiserver-1.28.4/admission-requests/b-pod-create-generatename-ownerrefs.request.json"
        let body = try SharedFixtures.bytes(path)
        let version = KubernetesVersion(major: 1, minor: 28, patch: 4)
        let first = Admission.review(body: body, contentType: "application/json", injector: Injector(), kubeVersion: version)
        let encoded = try #require(JSONReader.parse(first.body)["response"]?["patch"]?.stringValue)
        let patch = try JSONPatch(json: JSONReader.parse(#require(Base64.decode(encoded))))
        let review = try JSONReader.parse(body)
        let injected = try patch.apply(to: review["request"]!["object"]!)
        let replace: JSON = [["op": "replace", "path": "/request/object", "value": injected]]
        let again = try JSONPatch(json: replace).apply(to: review)
        let second = Admission.review(body: JSONWriter.write(again), contentType: "application/json", injector: Injector(), kubeVersion: version)
        #expect(second.outcome == .allowed)
        #expect(second.reason == "already_injected")
    }
}
