@testable import Bridge
import Document
import Testing

@Suite struct LyftAPITests {
    @Test func formRegistrationAsLegacyAgentsSendIt() throws {
        let body = Array("ip=198.51.100.7&port=9211&revision=abc123&service_repo_name=web-repo&tags=%7B%22az%22%3A%22us-east-1a%22%2C%22canary%22%3Atrue%7D".utf8)
        let registration = try LyftAPI.registration(service: "web", body: body, contentType: "application/x-www-form-urlencoded")
        #expect(registration == LegacyRegistration(service: "web", address: "198.51.100.7", port: 9211, revision: "abc123",
                                                   repository: "web-repo", tags: ["az": "us-east-1a", "canary": true]))
    }

    @Test func jsonRegistrationWorksToo() throws {
        let body = Array(#"{"ip":"2001:db8::1","port":443,"revision":"r","tags":{"region":"eu"}}"#.utf8)
        let registration = try LyftAPI.registration(service: "api.payments", body: body, contentType: "application/json; charset=utf-8")
        #expect(registration.address == "2001:db8::1")
        #expect(registration.port == 443)
        #expect(registration.tags == ["region": "eu"])
    }

    @Test(arguments: [
        ("port=1&revision=r", "ip is required"),
        ("ip=1.2.3&port=1&revision=r", "ip \"1.2.3\" is not an IPv4 or IPv6 address"),
        ("ip=01.2.3.4&port=1&revision=r", "ip \"01.2.3.4\" is not an IPv4 or IPv6 address"),
        ("ip=1.2.3.4&port=0&revision=r", "port must be a number from 1 to 65535"),
        ("ip=1.2.3.4&port=70000&revision=r", "port must be a number from 1 to 65535"),
        ("ip=1.2.3.4&port=80", "revision is required"),
        ("ip=1.2.3.4&port=80&revision=r&tags=notjson", "tags must be a JSON object"),
        ("ip=1.2.3.4%zz&port=80&revision=r", "malformed percent-encoding in form body"),
    ])
    func badRegistrationsAreRefusedWithTheReason(body: String, message: String) {
        #expect(throws: BridgeRequestError(message)) {
            try LyftAPI.registration(service: "web", body: Array(body.utf8), contentType: nil)
        }
    }

    @Test func serviceNamesMustBeDNSFriendly() {
        #expect(throws: BridgeRequestError("service name \"Web_1\" must be lower-case letters, digits, '-' and '.'")) {
            try LyftAPI.validate(serviceName: "Web_1")
        }
    }

    @Test func hostsListOnlyTrafficTakingEndpointsOfBothOrigins() {
        let endpoints = [
            Endpoint(address: "192.0.2.1", port: 8080, health: .healthy, zone: "zone-a",
                     origin: .kubernetes(slice: "web-1", target: "shop/web-abc")),
            Endpoint(address: "192.0.2.2", port: 8080, health: .draining, zone: nil, origin: .kubernetes(slice: "web-1", target: nil)),
            Endpoint(address: "198.51.100.9", port: 80, health: .healthy, zone: nil,
                     origin: .legacy(revision: "r1", repository: nil, tags: ["az": "a"], lastCheckIn: 1_764_290_096.25)),
        ]
        let answer = LyftAPI.hosts(service: "web", env: "production", endpoints: endpoints)
        #expect(JSONWriter.string(answer) == #"{"service":"web","env":"production","hosts":[{"ip_address":"192.0.2.1","port":8080,"revision":"","service":"web","service_repo_name":null,"last_check_in":null,"tags":{"az":"zone-a","instance_id":"shop/web-abc","canary":false,"load_balancing_weight":1}},{"ip_address":"198.51.100.9","port":80,"revision":"r1","service":"web","service_repo_name":null,"last_check_in":"2025-11-28 00:34:56.250000","tags":{"az":"a"}}]}"#)
    }

    @Test func ipAddressForms() {
        for valid in ["0.0.0.0", "255.255.255.255", "::1", "::", "2001:db8::", "fe80::1:2:3:4", "::ffff:192.0.2.1", "1:2:3:4:5:6:7:8"] {
            #expect(IPAddress.isValid(valid), "\(valid)")
        }
        for invalid in ["256.1.1.1", "1.2.3", "1.2.3.4.5", "a.b.c.d", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", ":", "", "1.2.3.-4"] {
            #expect(!IPAddress.isValid(invalid), "\(invalid)")
        }
    }

    @Test func lyftTimestampsMatchPythonsStrOfDatetime() {
        #expect(Timestamp.lyft(0) == "1970-01-01 00:00:00.000000")
        #expect(Timestamp.lyft(951_782_400.5) == "2000-02-29 00:00:00.500000")
        #expect(Timestamp.lyft(4_102_444_799) == "2099-12-31 23:59:59.000000")
    }
}

@Suite struct XDSTests {
    private func registry() -> Registry {
        var registry = Registry(defaultNamespace: "shop")
        registry.apply(.registered(LegacyRegistration(service: "backend", address: "198.51.100.4", port: 8080, revision: "r",
                                                      tags: ["az": "z1"]), time: 0))
        return registry
    }

    @Test func endpointsAnswerWithTheWholeAssignmentThen304() throws {
        let registry = registry()
        let request = try XDS.Request(body: Array(#"{"node":{"id":"sidecar-1","cluster":"demo"},"resource_names":["backend"],"type_url":"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"}"#.utf8))
        #expect(request.nodeID == "sidecar-1")
        guard case .response(let response) = XDS.endpoints(request, registry: registry) else {
            Issue.record("expected a response")
            return
        }
        #expect(JSONWriter.string(response) == #"{"version_info":"1","type_url":"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment","nonce":"1","resources":[{"@type":"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment","cluster_name":"backend","endpoints":[{"locality":{"zone":"z1"},"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"198.51.100.4","port_value":8080}}},"health_status":"HEALTHY"}]}]}]}"#)
        var again = request
        again.versionInfo = "1"
        #expect(XDS.endpoints(again, registry: registry) == .unchanged)
    }

    @Test func scaleToZeroIsAnEmptyAssignment() throws {
        var registry = registry()
        registry.apply(.deregistered(service: "backend", address: "198.51.100.4", port: nil))
        let answer = XDS.endpoints(XDS.Request(versionInfo: "1", resourceNames: ["backend"]), registry: registry)
        guard case .response(let response) = answer else {
            Issue.record("expected a response")
            return
        }
        #expect(response["version_info"] == "2")
        #expect(response["resources"]?.arrayValue?.first?["endpoints"] == [])
    }

    @Test func clustersPointEnvoyBackAtTheBridge() {
        guard case .response(let response) = XDS.clusters(XDS.Request(), registry: registry(), edsCluster: "tandem-bridge") else {
            Issue.record("expected a response")
            return
        }
        let cluster = response["resources"]?.arrayValue?.first
        #expect(cluster?["name"] == "backend")
        #expect(cluster?["eds_cluster_config"]?["eds_config"]?["api_config_source"]?["cluster_names"] == ["tandem-bridge"])
    }

    @Test func malformedRequestsAreRefused() {
        #expect(throws: BridgeRequestError("resource_names must be a list of strings")) {
            try XDS.Request(body: Array(#"{"resource_names":[1]}"#.utf8))
        }
        #expect(throws: BridgeRequestError("DiscoveryRequest must be a JSON object")) {
            try XDS.Request(body: Array("[]".utf8))
        }
    }
}
