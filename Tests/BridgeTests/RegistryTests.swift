import Bridge
import Document
import Foundation
import Kubernetes
import Testing
import TestSupport

private func slice(_ name: String, service: String, namespace: String = "shop", port: Int = 8080,
                   _ endpoints: [(String, ready: Bool, serving: Bool, terminating: Bool)]) -> EndpointSlice {
    EndpointSlice(namespace: namespace, name: name, serviceName: service, managedBy: "endpointslice-controller.k8s.io",
                  addressType: "IPv4", ports: [.init(name: "http", port: port, protocolName: "TCP")],
                  endpoints: endpoints.map { .init(addresses: [$0.0], ready: $0.ready, serving: $0.serving,
                                                   terminating: $0.terminating, nodeName: nil, zone: "zone-a", target: nil) })
}

@Suite struct RegistryTests {
    @Test func scaleUpAndScaleDownWithTerminatingEndpoints() {
        var registry = Registry(defaultNamespace: "shop")
        #expect(registry.apply(.sliceChanged(slice("web-1", service: "web", [("192.0.2.1", true, true, false)]))) == ["web"])
        let up = registry.apply(.sliceChanged(slice("web-1", service: "web", [
            ("192.0.2.1", true, true, false), ("192.0.2.2", true, true, false)])))
        #expect(up == ["web"])
        #expect(registry.endpoints(of: "web").map(\.health) == [.healthy, .healthy])
        registry.apply(.sliceChanged(slice("web-1", service: "web", [
            ("192.0.2.1", true, true, false), ("192.0.2.2", false, true, true)])))
        #expect(registry.endpoints(of: "web").map(\.health) == [.healthy, .draining])
        registry.apply(.sliceChanged(slice("web-1", service: "web", [("192.0.2.2", false, false, true)])))
        #expect(registry.endpoints(of: "web").map(\.health) == [.unhealthy])
        registry.apply(.sliceDeleted(namespace: "shop", name: "web-1"))
        #expect(registry.endpoints(of: "web").isEmpty)
        #expect(registry.version == 5)
    }

    @Test func unchangedEventsDoNotBumpTheVersion() {
        var registry = Registry(defaultNamespace: "shop")
        let web = slice("web-1", service: "web", [("192.0.2.1", true, true, false)])
        registry.apply(.sliceChanged(web))
        #expect(registry.apply(.sliceChanged(web)).isEmpty)
        #expect(registry.apply(.slicesListed([web])).isEmpty)
        #expect(registry.version == 1)
        #expect(registry.version(of: "web") == 1)
    }

    @Test func otherNamespacesAreQualifiedAndRelistReplacesTheKubernetesSide() {
        var registry = Registry(defaultNamespace: "shop")
        registry.apply(.sliceChanged(slice("a-1", service: "a", namespace: "billing", [("192.0.2.5", true, true, false)])))
        registry.apply(.sliceChanged(slice("b-1", service: "b", [("192.0.2.6", true, true, false)])))
        #expect(registry.services == ["a.billing", "b"])
        let changed = registry.apply(.slicesListed([slice("b-1", service: "b", [("192.0.2.7", true, true, false)])]))
        #expect(changed == ["a.billing", "b"])
        #expect(registry.services == ["b"])
    }

    @Test func legacyHostsJoinPodsMergeTagsAndExpire() {
        var registry = Registry(defaultNamespace: "shop", ttl: 30)
        registry.apply(.sliceChanged(slice("web-1", service: "web", [("192.0.2.1", true, true, false)])))
        registry.apply(.registered(LegacyRegistration(service: "web", address: "198.51.100.9", port: 80, revision: "r1",
                                                      tags: ["az": "us-east-1a", "canary": true]), time: 1000))
        registry.apply(.registered(LegacyRegistration(service: "web", address: "198.51.100.9", port: 80, revision: "r2",
                                                      tags: ["canary": false]), time: 1020))
        let endpoints = registry.endpoints(of: "web")
        #expect(endpoints.map(\.address) == ["192.0.2.1", "198.51.100.9"])
        guard case .legacy(let revision, _, let tags, let lastCheckIn) = endpoints[1].origin else {
            Issue.record("expected a legacy host")
            return
        }
        #expect(revision == "r2")
        #expect(tags == ["az": "us-east-1a", "canary": false])
        #expect(lastCheckIn == 1020)
        #expect(registry.apply(.tick(time: 1049)).isEmpty)
        #expect(registry.apply(.tick(time: 1051)) == ["web"])
        #expect(registry.endpoints(of: "web").map(\.address) == ["192.0.2.1"])
    }

    @Test func heartbeatsThatChangeNothingElseWakeNobody() {
        var registry = Registry(defaultNamespace: "shop", ttl: 30)
        let host = LegacyRegistration(service: "web", address: "198.51.100.9", port: 80, revision: "r1")
        #expect(registry.apply(.registered(host, time: 1000)) == ["web"])
        #expect(registry.apply(.registered(host, time: 1020)).isEmpty)
        #expect(registry.version == 1)
        #expect(registry.apply(.tick(time: 1040)).isEmpty, "the heartbeat still counts for the TTL")
    }

    @Test func mirroredHostsReplaceTheLegacySideWithFreshCheckIns() {
        var registry = Registry(defaultNamespace: "shop", ttl: 30)
        registry.apply(.registered(LegacyRegistration(service: "old", address: "198.51.100.1", port: 80, revision: "r1"), time: 0))
        let mirrored = [LegacyRegistration(service: "web", address: "198.51.100.9", port: 80, revision: "r2")]
        #expect(registry.apply(.legacyMirrored(mirrored, time: 500)) == ["old", "web"])
        #expect(registry.services == ["web"])
        #expect(registry.apply(.legacyMirrored(mirrored, time: 600)).isEmpty)
        #expect(registry.apply(.tick(time: 620)).isEmpty)
        #expect(registry.apply(.tick(time: 631)) == ["web"])
    }

    @Test func deregistrationRemovesOnePortOrTheWholeAddress() {
        var registry = Registry()
        for port in [80, 81] {
            registry.apply(.registered(LegacyRegistration(service: "db", address: "198.51.100.1", port: port, revision: "x"), time: 0))
        }
        registry.apply(.deregistered(service: "db", address: "198.51.100.1", port: 81))
        #expect(registry.endpoints(of: "db").map(\.port) == [80])
        registry.apply(.deregistered(service: "db", address: "198.51.100.1", port: nil))
        #expect(registry.services.isEmpty)
    }

    @Test func slicesWrittenByTheBridgeItselfAreNotReadBack() {
        var registry = Registry()
        var own = slice("web-legacy", service: "web", namespace: "default", [("198.51.100.9", true, true, false)])
        own.managedBy = registry.ownManager
        #expect(registry.apply(.sliceChanged(own)).isEmpty)
        #expect(registry.services.isEmpty)
    }

    @Test func realEndpointSlicesDecodeIncludingBookmarks() throws {
        let base = SharedFixtures.root + "/kube-apiserver-1.28.4"
        let list = try JSONReader.parse(Array(try Data(contentsOf: URL(fileURLWithPath: base + "/list/endpointslices.body.json"))))
        let items = try #require(list["items"]?.arrayValue)
        let decoded = try #require(EndpointSlice(items[0]))
        #expect(decoded.serviceName == "checkout")
        #expect(decoded.endpoints.map(\.addresses) == [["192.0.2.10"], ["192.0.2.11"], ["192.0.2.12"]])
        #expect(decoded.endpoints[1].ready == false && decoded.endpoints[1].serving && decoded.endpoints[1].terminating)
        #expect(decoded.endpoints[0].target == "shop/checkout-7d9f8b6c5d-2xv9k")

        var registry = Registry(defaultNamespace: "shop")
        let stream = try String(contentsOfFile: base + "/watch/endpointslices-4b/w2-from-rv.stream.jsonl", encoding: .utf8)
        var kinds: [String] = []
        for line in stream.split(separator: "\n") {
            let event = try JSONReader.parse(String(line))
            let type = try #require(event["type"]?.stringValue)
            kinds.append(type)
            let object = try #require(event["object"])
            switch type {
            case "ADDED", "MODIFIED":
                registry.apply(.sliceChanged(try #require(EndpointSlice(object))))
            case "DELETED":
                let slice = try #require(EndpointSlice(object))
                registry.apply(.sliceDeleted(namespace: slice.namespace, name: slice.name))
            case "BOOKMARK":
                // A bookmark carries nulls where lists would be; it must still decode.
                let bookmark = try #require(EndpointSlice(object.objectValue.map { var copy = $0; copy["metadata"] = ["name": "", "resourceVersion": "1"]; return JSON.object(copy) }!))
                #expect(bookmark.endpoints.isEmpty && bookmark.ports.isEmpty)
            default:
                Issue.record("unexpected event \(type)")
            }
            if type == "MODIFIED", kinds.count == 2 {
                #expect(registry.endpoints(of: "checkout").map(\.health) == [.healthy, .draining, .healthy])
            }
        }
        #expect(kinds == ["ADDED", "MODIFIED", "MODIFIED", "DELETED", "BOOKMARK", "BOOKMARK"])
        #expect(registry.endpoints(of: "checkout").isEmpty)
    }
}
