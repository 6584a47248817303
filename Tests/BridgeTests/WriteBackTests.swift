import Bridge
import Document
import Kubernetes
import Testing

private func legacyHosts(_ hosts: [(String, Int)], service: String, revision: String = "r1") -> Registry {
    var registry = Registry(defaultNamespace: "shop")
    for (address, port) in hosts {
        registry.apply(.registered(LegacyRegistration(service: service, address: address, port: port, revision: revision,
                                                      tags: ["az": "us-east-1a"]), time: 1000))
    }
    return registry
}

/// What the API server would hold after the plan's creates: server fields added.
private func stored(_ object: JSON, version: Int) -> JSON {
    var copy = object.objectValue!
    var metadata = copy["metadata"]!.objectValue!
    metadata["resourceVersion"] = .string(String(version))
    metadata["uid"] = .string("u-\(version)")
    copy["metadata"] = .object(metadata)
    if var spec = copy["spec"]?.objectValue {
        spec["clusterIP"] = "198.51.100.20"
        spec["sessionAffinity"] = "None"
        copy["spec"] = .object(spec)
    }
    return .object(copy)
}

private func created(_ plan: WriteBack.Plan) -> [JSON] {
    plan.writes.compactMap { if case .create(_, let object) = $0 { return object } else { return nil } }
}

@Suite struct WriteBackTests {
    let writeBack = WriteBack(homeNamespace: "shop")

    @Test func aLegacyOnlyServiceGetsASelectorlessServiceAndASlice() throws {
        let registry = legacyHosts([("198.51.100.9", 8080), ("198.51.100.10", 8080)], service: "billing")
        let plan = writeBack.plan(legacy: registry.legacyServices, services: [], slices: [])
        #expect(plan.skipped.isEmpty)
        let objects = created(plan)
        #expect(plan.writes.map { if case .create(let collection, _) = $0 { collection } else { "?" } } == [
            "/api/v1/namespaces/shop/services", "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"])
        let service = objects[0]
        #expect(service["spec"]?["selector"] == nil)
        #expect(service["spec"]?["ports"] == [["name": "tcp-8080", "protocol": "TCP", "port": 8080, "targetPort": 8080]])
        #expect(service["metadata"]?["labels"]?["app.kubernetes.io/managed-by"] == "bridge.tandem.io")
        let slice = try #require(EndpointSlice(objects[1]))
        #expect(slice.name == "billing-tandem-ipv4-8080")
        #expect(slice.serviceName == "billing" && slice.managedBy == "bridge.tandem.io")
        #expect(slice.ports == [.init(name: "tcp-8080", port: 8080, protocolName: "TCP")])
        #expect(slice.endpoints.map(\.addresses) == [["198.51.100.10"], ["198.51.100.9"]])
        #expect(slice.endpoints.allSatisfy { $0.ready && $0.zone == "us-east-1a" })
    }

    @Test func anUnchangedWorldNeedsNoWritesAndHeartbeatsDoNotRewrite() {
        var registry = legacyHosts([("198.51.100.9", 8080)], service: "billing")
        let first = created(writeBack.plan(legacy: registry.legacyServices, services: [], slices: []))
        let services = [stored(first[0], version: 10)]
        let slices = [stored(first[1], version: 11)]
        registry.apply(.registered(LegacyRegistration(service: "billing", address: "198.51.100.9", port: 8080, revision: "r1",
                                                      tags: ["az": "us-east-1a"]), time: 1030))
        #expect(writeBack.plan(legacy: registry.legacyServices, services: services, slices: slices).writes.isEmpty)
    }

    @Test func aChangedHostSetIsPatchedWithTheVersionItWasPlannedAgainst() throws {
        var registry = legacyHosts([("198.51.100.9", 8080)], service: "billing")
        let first = created(writeBack.plan(legacy: registry.legacyServices, services: [], slices: []))
        registry.apply(.registered(LegacyRegistration(service: "billing", address: "198.51.100.11", port: 8080, revision: "r1"),
                                   time: 1010))
        let plan = writeBack.plan(legacy: registry.legacyServices, services: [stored(first[0], version: 10)],
                                  slices: [stored(first[1], version: 11)])
        #expect(plan.writes.count == 1)
        guard case .patch(let path, let patch) = try #require(plan.writes.first) else {
            Issue.record("expected a patch, got \(plan.writes)")
            return
        }
        #expect(path == "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/billing-tandem-ipv4-8080")
        #expect(patch["metadata"]?["resourceVersion"] == "11")
        #expect(patch["endpoints"]?.arrayValue?.count == 2)
        #expect(patch["ports"] == nil)
    }

    @Test func goneHostsRemoveSlicesBeforeTheirService() {
        let registry = legacyHosts([("198.51.100.9", 8080)], service: "billing")
        let first = created(writeBack.plan(legacy: registry.legacyServices, services: [], slices: []))
        let plan = writeBack.plan(legacy: [:], services: [stored(first[0], version: 10)], slices: [stored(first[1], version: 11)])
        #expect(plan.writes == [
            .delete(path: "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/billing-tandem-ipv4-8080"),
            .delete(path: "/api/v1/namespaces/shop/services/billing"),
        ])
    }

    @Test func legacyHostsJoinAnExistingServiceByItsPortNames() throws {
        let pods: JSON = ["apiVersion": "v1", "kind": "Service",
                          "metadata": ["name": "web", "namespace": "shop", "resourceVersion": "5"],
                          "spec": ["selector": ["app": "web"], "ports": [
                            ["name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"],
                            ["name": "admin", "port": 9000, "targetPort": 9000, "protocol": "TCP"]]]]
        let registry = legacyHosts([("198.51.100.9", 8080), ("198.51.100.9", 9000), ("198.51.100.9", 7000)], service: "web")
        let plan = writeBack.plan(legacy: registry.legacyServices, services: [pods], slices: [])
        let slices = created(plan).compactMap(EndpointSlice.init)
        #expect(created(plan).count == 2, "no Service of our own: the pods' one is joined")
        #expect(slices.map(\.ports) == [[.init(name: "http", port: 8080, protocolName: "TCP")],
                                        [.init(name: "admin", port: 9000, protocolName: "TCP")]])
        #expect(plan.skipped.map(\.reason) == ["Service shop/web has no port for 7000"])
    }

    @Test func namesAndNamespacesDecideWhereAndWhetherToWrite() {
        let scoped = WriteBack(homeNamespace: "shop", namespaces: ["shop", "billing"])
        var registry = Registry(defaultNamespace: "shop")
        for service in ["ledger.billing", "cart.other", "Bad_Name", "a.b.c"] {
            registry.apply(.registered(LegacyRegistration(service: service, address: "198.51.100.1", port: 80, revision: "x"), time: 0))
        }
        let plan = scoped.plan(legacy: registry.legacyServices, services: [], slices: [])
        #expect(plan.writes.map { if case .create(let collection, _) = $0 { collection } else { "?" } } == [
            "/api/v1/namespaces/billing/services", "/apis/discovery.k8s.io/v1/namespaces/billing/endpointslices"])
        #expect(plan.skipped.map(\.service) == ["Bad_Name", "a.b.c", "cart.other"])
    }

    @Test func slicesSplitByFamilyPortAndTheEndpointLimit() {
        var hosts = (0..<1001).map { ("10.1.\($0 / 256).\($0 % 256)", 80) }
        hosts.append(("2001:db8::1", 80))
        let plan = writeBack.plan(legacy: legacyHosts(hosts, service: "big").legacyServices, services: [], slices: [])
        let slices = created(plan).compactMap(EndpointSlice.init)
        #expect(slices.map(\.name) == ["big-tandem-ipv4-80", "big-tandem-ipv4-80-1", "big-tandem-ipv6-80"])
        #expect(slices.map(\.endpoints.count) == [1000, 1, 1])
        #expect(slices.map(\.addressType) == ["IPv4", "IPv4", "IPv6"])
    }

    @Test func registrationsComeBackFromTheSlicesWritten() {
        var registry = Registry(defaultNamespace: "shop")
        registry.apply(.registered(LegacyRegistration(service: "ledger.billing", address: "198.51.100.3", port: 81, revision: "r7",
                                                      repository: "git@example:ledger", tags: ["canary": true]), time: 0))
        let slice = created(writeBack.plan(legacy: registry.legacyServices, services: [], slices: []))[1]
        #expect(writeBack.registrations(in: slice) == [
            LegacyRegistration(service: "ledger.billing", address: "198.51.100.3", port: 81, revision: "r7",
                               repository: "git@example:ledger", tags: ["canary": true])])
        var foreign = slice.objectValue!
        foreign["metadata"] = ["name": "x", "namespace": "billing", "labels": ["kubernetes.io/service-name": "ledger"]]
        #expect(writeBack.registrations(in: .object(foreign)).isEmpty)
    }
}
