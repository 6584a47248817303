import Document
@testable import Injection
import Kubernetes
import Testing

/// Injection over pods captured from a real apiserver, which carry everything defaulting and
/// built-in admission add.
@Suite struct ApiserverPodTests {
    static let cases: [(String, SidecarMode)] = ApiserverPods.all.map(\.0).flatMap { name in
        SidecarMode.allCases.map { (name, $0) }
    }

    static func pod(_ name: String) throws -> JSON {
        let text = try #require(ApiserverPods.all.first { $0.0 == name }?.1)
        return try JSONReader.parse(text)
    }

    @Test(arguments: ApiserverPods.all.map(\.0))
    func realPodsAreValid(name: String) throws {
        #expect(PodValidation.problems(in: try Self.pod(name)["spec"] ?? .null) == [])
    }

    @Test(arguments: cases)
    func injectAndUninject(name: String, mode: SidecarMode) throws {
        let pod = try Self.pod(name)
        let injector = Injector()
        let report = try injector.inject(object: pod, namespace: "shop", lifecycle: mode == .native ? .native : .legacy,
                                         kubeVersion: KubernetesVersion("v1.28.4"))
        let workload = try #require(report.workloads.first)
        if name == "e" {
            #expect(workload.reason == .optedOutAnnotation)
            #expect(orderedEqual(report.object, pod))
            return
        }
        #expect(workload.reason == .injected)
        #expect(PodValidation.problems(in: report.object["spec"] ?? .null) == [])
        #expect(env("TANDEM_INBOUND_PORTS", of: container("tandem-proxy", in: report.object["spec"],
                                                          list: mode == .native ? "initContainers" : "containers")) == "8080,9090,2020")
        if mode == .native {
            #expect(workload.warnings.first?.hasPrefix("native sidecars are off by default before Kubernetes 1.29") == true)
        } else {
            // The app has no command in the manifest: its image's ENTRYPOINT runs, which cannot be wrapped.
            #expect(workload.warnings.count == 2)
        }
        #expect(orderedEqual(try injector.uninject(object: report.object).object, pod))
        let again = try injector.inject(object: report.object, namespace: "shop", lifecycle: mode == .native ? .native : .legacy)
        #expect(again.workloads.map(\.reason) == [.alreadyInjected])
    }

    @Test func generateNameIsReported() throws {
        let report = try Injector().inject(object: try Self.pod("b"), namespace: "shop")
        #expect(report.workloads.first?.name == "checkout-7d9f8b6c5d-*")
    }
}
