@testable import Bridge
import Document
import Testing

@Suite struct BridgeAPITests {
    let api = BridgeAPI(tokens: ["s3cret", "other-token"], environment: "staging")

    private func register(_ service: String, _ body: String, token: String? = "s3cret", registry: inout Registry, now: Double = 100) -> APIResponse {
        api.handle(APIRequest(method: "POST", path: "/v1/registration/\(service)", authorization: token.map { "Bearer " + $0 },
                              contentType: "application/x-www-form-urlencoded", body: Array(body.utf8)),
                   registry: &registry, now: now)
    }

    @Test func registrationNeedsAValidBearerToken() {
        var registry = Registry()
        let body = "ip=198.51.100.1&port=80&revision=r"
        #expect(register("web", body, token: nil, registry: &registry)
            == .error(401, "registration needs an Authorization: Bearer token"))
        #expect(register("web", body, token: "guess", registry: &registry) == .error(401, "the bearer token is not valid"))
        #expect(registry.services.isEmpty)
        let accepted = register("web", body, token: "other-token", registry: &registry)
        #expect(accepted.status == 200)
        #expect(accepted.changedServices == ["web"])
        var closed = Registry()
        let switchedOff = BridgeAPI(tokens: []).handle(
            APIRequest(method: "POST", path: "/v1/registration/web", authorization: "Bearer s3cret", body: Array(body.utf8)),
            registry: &closed, now: 0)
        #expect(switchedOff == .error(403, "registration is switched off: start the bridge with --token-file"))
    }

    @Test func registerListAndDeregister() {
        var registry = Registry()
        _ = register("web", "ip=198.51.100.1&port=80&revision=r1", registry: &registry)
        _ = register("web", "ip=198.51.100.1&port=81&revision=r1", registry: &registry)
        let listed = api.handle(APIRequest(method: "GET", path: "/v1/registration/web"), registry: &registry, now: 100)
        #expect(listed.status == 200)
        let hosts = (try? JSONReader.parse(listed.body))?["hosts"]?.arrayValue ?? []
        #expect(hosts.count == 2)
        let missing = api.handle(APIRequest(method: "DELETE", path: "/v1/registration/web/198.51.100.9", authorization: "Bearer s3cret"),
                                 registry: &registry, now: 100)
        #expect(missing == .error(404, "no registration of 198.51.100.9 for service web"))
        let removed = api.handle(APIRequest(method: "DELETE", path: "/v1/registration/web/198.51.100.1:81", authorization: "Bearer s3cret"),
                                 registry: &registry, now: 100)
        #expect(removed.status == 200)
        #expect(registry.endpoints(of: "web").map(\.port) == [80])
        let anonymous = api.handle(APIRequest(method: "DELETE", path: "/v1/registration/web/198.51.100.1"), registry: &registry, now: 100)
        #expect(anonymous.status == 401)
    }

    @Test func onlyTheWriterAppliesRegistrations() {
        var registry = Registry()
        let post = APIRequest(method: "POST", path: "/v1/registration/web", authorization: "Bearer s3cret",
                              contentType: "application/x-www-form-urlencoded", body: Array("ip=198.51.100.1&port=80&revision=r".utf8))
        let refused = api.handle(post, registry: &registry, now: 0, writer: .other(address: "10.0.0.7:8090"))
        #expect(refused.forwardTo == "10.0.0.7:8090")
        #expect(refused == {
            var response = APIResponse.error(503, "this bridge replica does not write and the writer at 10.0.0.7:8090 is out of reach; retry in a second")
            response.forwardTo = "10.0.0.7:8090"
            return response
        }(), "the answer when the writer cannot take it")
        let delete = APIRequest(method: "DELETE", path: "/v1/registration/web/198.51.100.1", authorization: "Bearer s3cret")
        #expect(api.handle(delete, registry: &registry, now: 0, writer: .other(address: "10.0.0.7:8090")).forwardTo == "10.0.0.7:8090")
        #expect(api.handle(post, registry: &registry, now: 0, writer: .unknown)
            == .error(503, "no bridge replica is the writer yet; retry in a second"))
        var anonymous = post
        anonymous.authorization = nil
        #expect(api.handle(anonymous, registry: &registry, now: 0, writer: .other(address: "10.0.0.7:8090")).status == 401,
                "nothing forwarded for callers who could not write anyway")
        #expect(registry.services.isEmpty)
        #expect(api.handle(APIRequest(method: "GET", path: "/v1/registration/web"), registry: &registry, now: 0,
                           writer: .unknown).status == 200, "reads are served by every replica")
    }

    @Test func wrongMethodsAndPathsAreNamed() {
        var registry = Registry()
        #expect(api.handle(APIRequest(method: "PUT", path: "/v1/registration/web"), registry: &registry, now: 0)
            == .error(405, "method PUT is not allowed on /v1/registration/web"))
        #expect(api.handle(APIRequest(method: "GET", path: "/v3/discovery:endpoints"), registry: &registry, now: 0).status == 405)
        #expect(api.handle(APIRequest(method: "GET", path: "/v2/nothing"), registry: &registry, now: 0)
            == .error(404, "no such endpoint: /v2/nothing"))
        #expect(register("Bad_Name", "ip=198.51.100.1&port=80&revision=r", registry: &registry)
            == .error(400, "service name \"Bad_Name\" must be lower-case letters, digits, '-' and '.'"))
    }

    @Test func xdsThroughTheAPIAnswers304WhenCurrent() {
        var registry = Registry()
        _ = register("backend", "ip=198.51.100.4&port=8080&revision=r", registry: &registry)
        let body = Array(#"{"resource_names":["backend"],"version_info":"1"}"#.utf8)
        let response = api.handle(APIRequest(method: "POST", path: "/v3/discovery:endpoints", body: body), registry: &registry, now: 0)
        #expect(response.status == 304)
        #expect(response.body.isEmpty)
    }

    @Test func hostSplitting() {
        #expect(BridgeAPI.splitHost("198.51.100.7") == ("198.51.100.7", nil))
        #expect(BridgeAPI.splitHost("198.51.100.7:8080") == ("198.51.100.7", 8080))
        #expect(BridgeAPI.splitHost("2001:db8::1") == ("2001:db8::1", nil))
        #expect(BridgeAPI.splitHost("[2001:db8::1]:443") == ("2001:db8::1", 443))
    }

    @Test func pageEscapesWhatItShows() {
        var registry = Registry()
        registry.apply(.registered(LegacyRegistration(service: "web", address: "198.51.100.1", port: 80, revision: "<script>"), time: 10))
        let page = BridgePage.render(registry, now: 25)
        #expect(page.contains("legacy · revision &lt;script&gt;"))
        #expect(page.contains("15s since heartbeat"))
        #expect(!page.contains("<script>"))
    }
}
