import Document
import Glibc
@testable import Injection
import Kubernetes
import Testing
import TestSupport

/// Every AdmissionReview a real kube-apiserver 1.28.4 sent, through the pure admission function.
struct AdmissionTests {
    static let requests = "kube-apiserver-1.28.4/admission-requests"
    static let native = "kube-apiserver-1.28.4/native-sidecars"
    static let v1_28 = KubernetesVersion(major: 1, minor: 28, patch: 4)
    static let v1_29 = KubernetesVersion(major: 1, minor: 29)

    /// Every captured request, relative to the fixtures root.
    static func allRequests() throws -> [String] {
        var paths = try SharedFixtures.files(in: requests, suffix: ".request.json").map { "\(requests)/\($0)" }
        for folder in ["1-gate-off", "2-gate-on", "3-gate-off-readback"] {
            paths += try SharedFixtures.files(in: "\(native)/\(folder)", suffix: "admissionreview-request.json")
                .map { "\(native)/\(folder)/\($0)" }
        }
        return paths
    }

    struct Case {
        var review: JSON
        var request: JSON { review["request"]! }
        var object: JSON { request["object"]! }
        var result: AdmissionResult
        var response: JSON
    }

    static func admit(_ path: String, injector: Injector = Injector(), kubeVersion: KubernetesVersion? = v1_28) throws -> Case {
        let body = try SharedFixtures.bytes(path)
        let result = Admission.review(body: body, contentType: "application/json", injector: injector, kubeVersion: kubeVersion)
        return Case(review: try JSONReader.parse(body), result: result, response: try JSONReader.parse(result.body))
    }

    /// The patch of a response, decoded.
    static func patch(of response: JSON) throws -> JSONPatch? {
        guard let text = response["response"]?["patch"]?.stringValue else { return nil }
        let bytes = try #require(Base64.decode(text))
        return try JSONPatch(json: JSONReader.parse(bytes))
    }

    @Test func fixturesAreFound() throws {
        #expect(try Self.allRequests().count == 15)
    }

    @Test(arguments: try allRequests())
    func everyRealRequestGetsAReviewWithItsUID(_ path: String) throws {
        let admitted = try Self.admit(path)
        #expect(admitted.result.status == 200)
        #expect(admitted.response["apiVersion"] == "admission.k8s.io/v1")
        #expect(admitted.response["kind"] == "AdmissionReview")
        #expect(admitted.response["response"]?["uid"] == admitted.request["uid"])
        #expect(admitted.result.uid == admitted.request["uid"]?.stringValue)
        #expect(admitted.result.namespace == "shop")
        // The answer is exactly the writer's text of itself, whichever way it was assembled.
        #expect(admitted.result.body == JSONWriter.write(admitted.response) + [UInt8(ascii: "\n")])

        if path.contains("/checkout-sidecar-"), admitted.request["operation"] == "CREATE" {
            // These pods declare their own init container named tandem-proxy: a reserved name.
            #expect(admitted.result.outcome == .denied)
            #expect(admitted.response["response"]?["allowed"] == false)
            #expect(admitted.response["response"]?["status"]?["message"]?.stringValue?
                .hasPrefix("tandem cannot inject this pod: spec.initContainers[0] is named tandem-proxy, which tandem reserves") == true)
            return
        }
        #expect(admitted.response["response"]?["allowed"] == true, "\(admitted.result.message ?? "")")
        if admitted.request["operation"] == "CREATE", admitted.object["metadata"]?["annotations"]?["tandem.io/inject"] == nil {
            #expect(admitted.result.outcome == .patched)
            #expect(admitted.result.reason == "injected")
            #expect(admitted.response["response"]?["patchType"] == "JSONPatch")
            let patch = try #require(try Self.patch(of: admitted.response))
            let encoded = try #require(admitted.response["response"]?["patch"]?.stringValue)
            let patchText = try #require(Base64.decode(encoded))
            #expect(patchText == JSONWriter.write(patch.json))
            let patched = try patch.apply(to: admitted.object)
            #expect(Admission.carriesProxy(patched))
            let before = Set(PodValidation.problems(in: admitted.object["spec"]!))
            #expect(PodValidation.problems(in: patched["spec"]!).filter { !before.contains($0) } == [])
            #expect(admitted.result.patchOperations == patch.operations.count)
        } else {
            #expect(admitted.result.outcome == .allowed)
            #expect(admitted.response["response"]?["patch"] == nil)
            #expect(admitted.response["response"]?["patchType"] == nil)
        }
    }

    @Test func generateNamePodHasNoNameAndIsInjected() throws {
        let admitted = try Self.admit("\(Self.requests)/b-pod-create-generatename-ownerrefs.request.json")
        #expect(admitted.request["name"] == nil)
        #expect(admitted.object["metadata"]?["name"] == nil)
        #expect(admitted.result.name == "checkout-7d9f8b6c5d-*")
        #expect(admitted.result.outcome == .patched)
        let patched = try #require(try Self.patch(of: admitted.response)).apply(to: admitted.object)
        #expect(patched["metadata"]?["name"] == nil, "the patch must not invent a name")
        #expect(patched["metadata"]?["generateName"] == "checkout-7d9f8b6c5d-")
    }

    @Test func dryRunIsInjectedTheSameAndMarked() throws {
        let dry = try Self.admit("\(Self.requests)/c-pod-create-server-dryrun.request.json")
        #expect(dry.result.dryRun)
        #expect(dry.result.outcome == .patched)
        let wet = try Self.admit("\(Self.requests)/a-pod-create-two-containers.request.json")
        #expect(!wet.result.dryRun)
    }

    @Test func updateIsAllowedUnchanged() throws {
        let admitted = try Self.admit("\(Self.requests)/d-pod-update-kubectl-label.request.json")
        #expect(admitted.result.reason == Admission.Reason.operationIgnored)
        #expect(admitted.result.operation == "UPDATE")
    }

    @Test func optOutAnnotationIsAllowedUnchanged() throws {
        let admitted = try Self.admit("\(Self.requests)/e-pod-create-optout-annotation.request.json")
        #expect(admitted.result.reason == "opted_out_annotation")
        #expect(admitted.result.outcome == .allowed)
    }

    @Test func killSwitchAllowsEveryPodUnchanged() throws {
        var config = InjectionConfig()
        config.injection.enabled = false
        for path in try Self.allRequests() {
            let admitted = try Self.admit(path, injector: Injector(config: config))
            #expect(admitted.result.outcome == .allowed, "\(path)")
            #expect(admitted.response["response"]?["patch"] == nil)
        }
    }

    @Test func namespaceComesFromTheRequest() throws {
        var review = try JSONReader.parse(SharedFixtures.bytes("\(Self.requests)/a-pod-create-two-containers.request.json"))
        review = try JSONPatch(json: JSONReader.parse(#"[{"op":"replace","path":"/request/namespace","value":"kube-system"},{"op":"remove","path":"/request/object/metadata/namespace"}]"#)).apply(to: review)
        let result = Admission.review(body: JSONWriter.write(review), contentType: "application/json",
                                      injector: Injector(), kubeVersion: AdmissionTests.v1_28)
        #expect(result.reason == "namespace_excluded")
        #expect(result.namespace == "kube-system")
    }

    @Test func nonPodKindsAreAllowedUnchanged() throws {
        let review = try JSONReader.parse(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Service"},"operation":"CREATE","namespace":"shop","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"s"},"spec":{"ports":[{"port":80}]}}}}"#)
        let result = Admission.review(body: JSONWriter.write(review), contentType: "application/json",
                                      injector: Injector(), kubeVersion: nil)
        #expect(result.reason == Admission.Reason.notAPod)
        #expect(String(decoding: result.body, as: UTF8.self)
            == #"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"u-1","allowed":true}}"# + "\n")
    }

    /// What counts as a pod: kind `Pod` in the core group (a group that is missing, empty or not a
    /// string), and no subresource (missing, empty or not a string).
    @Test(arguments: [
        (#""kind":{"group":"","version":"v1","kind":"Pod"}"#, true),
        (#""kind":{"version":"v1","kind":"Pod"}"#, true),
        (#""kind":{"group":null,"version":"v1","kind":"Pod"}"#, true),
        (#""kind":{"group":7,"version":"v1","kind":"Pod"}"#, true),
        (#""kind":{"group":"apps","version":"v1","kind":"Pod"}"#, false),
        (#""kind":{"group":"","version":"v1","kind":"pod"}"#, false),
        (#""kind":{"group":"","version":"v1"}"#, false),
        (#""kind":"Pod""#, false),
        (#""kind":{"group":"","version":"v1","kind":"Pod"},"subResource":"""#, true),
        (#""kind":{"group":"","version":"v1","kind":"Pod"},"subResource":null"#, true),
        (#""kind":{"group":"","version":"v1","kind":"Pod"},"subResource":"ephemeralcontainers""#, false),
    ])
    func podKindIsTheCoreGroupsPodWithoutSubresource(_ kind: String, _ isPod: Bool) throws {
        let body = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","#
            + kind + #","operation":"CREATE","namespace":"shop","object":{"kind":"Pod","apiVersion":"v1","#
            + #""metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1"}]}}}}"#
        let result = Admission.review(body: Array(body.utf8), contentType: "application/json",
                                      injector: Injector(), kubeVersion: Self.v1_28)
        #expect(result.status == 200, "\(kind)")
        #expect((result.reason != Admission.Reason.notAPod) == isPod, "\(kind): \(result.reason)")
        #expect((result.outcome == .patched) == isPod, "\(kind)")
    }

    @Test func lifecycleFollowsTheServerVersion() throws {
        let path = "\(Self.requests)/a-pod-create-two-containers.request.json"
        for (version, native) in [(Self.v1_28, false), (Self.v1_29, true)] {
            let admitted = try Self.admit(path, kubeVersion: version)
            let patched = try #require(try Self.patch(of: admitted.response)).apply(to: admitted.object)
            let initProxy = patched["spec"]?["initContainers"]?.arrayValue?.contains { $0["name"] == "tandem-proxy" } ?? false
            #expect(initProxy == native, "\(version)")
        }
    }

    /// How fast is Hack/bench/webhook's business; here, that the patch stays small.
    @Test func largePodWith1500EnvVarsGetsASmallPatch() throws {
        let path = "\(Self.requests)/f-pod-create-1500-env.request.json"
        let body = try SharedFixtures.bytes(path)
        let result = Admission.review(body: body, contentType: "application/json", injector: Injector(), kubeVersion: AdmissionTests.v1_28)
        #expect(result.outcome == .patched)
        // The proxy is inserted before the app (legacy on 1.28): matched by name, the app keeps
        // its 1,500 env vars untouched instead of being diffed against the proxy.
        let patch = try #require(try Self.patch(of: JSONReader.parse(result.body)))
        #expect(patch.operations.count < 30, "\(patch.operations.count) operations")
        let proxyAdd = patch.operations.first { $0.path.tokens == ["spec", "containers", "0"] }
        if case .add(_, let value)? = proxyAdd {
            #expect(value["name"] == "tandem-proxy")
        } else {
            Issue.record("no add of the proxy at /spec/containers/0")
        }
        #expect(!patch.operations.contains { $0.path.tokens.count > 4 && $0.path.tokens[3] == "env" && $0.name == "replace" })
    }

    /// `kubectl patch --local` is an independent JSON Patch implementation (the apiserver's own).
    @Test(.enabled(if: hasProgram("kubectl")), arguments: ["a-pod-create-two-containers", "b-pod-create-generatename-ownerrefs"])
    func kubectlAppliesThePatch(_ name: String) throws {
        let admitted = try Self.admit("\(Self.requests)/\(name).request.json")
        let patch = try #require(try Self.patch(of: admitted.response))
        let directory = "/tmp/tandem-admission-\(getpid())-\(name)"
        _ = try runProcess(["mkdir", "-p", directory])
        defer { _ = try? runProcess(["rm", "-rf", directory]) }
        var object = admitted.object
        if object["metadata"]?["name"] == nil {
            // kubectl needs a name to address the object; the patch never touches it.
            object = try JSONPatch(json: JSONReader.parse(#"[{"op":"add","path":"/metadata/name","value":"named-for-kubectl"}]"#)).apply(to: object)
        }
        let file = "\(directory)/pod.json"
        _ = try runProcess(["sh", "-c", "cat > \(file)"], stdin: JSONWriter.write(object))
        let run = try runProcess(["kubectl", "patch", "--local", "-f", file, "--type", "json",
                                  "-p", JSONWriter.string(patch.json), "-o", "json"])
        #expect(run.status == 0, Comment(rawValue: run.error))
        let patched = try JSONReader.parse(run.output)
        #expect(Admission.carriesProxy(patched))
        // Recent kubectl's local printer drops managedFields (Debian's 1.20 keeps them); the
        // patch never touches them, and everything else must match.
        let dropManagedFields = try JSONPatch(json: JSONReader.parse(#"[{"op":"remove","path":"/metadata/managedFields"}]"#))
        let withoutManagedFields = { (pod: JSON) throws -> JSON in
            pod["metadata"]?["managedFields"] == nil ? pod : try dropManagedFields.apply(to: pod)
        }
        #expect(try withoutManagedFields(patched) == withoutManagedFields(patch.apply(to: object)))
    }
}

extension Admission {
    /// The review of a request whose Content-Type field is `contentType`, given as the webhook
    /// gives it: as the field's bytes.
    static func review(body: [UInt8], contentType: String?, injector: Injector,
                       kubeVersion: KubernetesVersion?) -> AdmissionResult {
        guard var contentType else {
            return review(body: body, contentType: nil as UnsafeRawBufferPointer?, injector: injector, kubeVersion: kubeVersion)
        }
        return contentType.withUTF8 {
            review(body: body, contentType: UnsafeRawBufferPointer($0), injector: injector, kubeVersion: kubeVersion)
        }
    }
}

/// Requests the apiserver would never send, answered as controller-runtime answers them.
struct AdmissionBadRequestTests {
    static func review(_ body: String, contentType: String? = "application/json") -> (Int, String) {
        let result = Admission.review(body: Array(body.utf8), contentType: contentType, injector: Injector(), kubeVersion: nil)
        #expect(result.outcome == .badRequest)
        return (result.status, String(decoding: result.body, as: UTF8.self))
    }

    static func error(_ code: Int, _ message: String) -> String {
        #"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"","allowed":false,"status":{"metadata":{},"message":"\#(message)","code":\#(code)}}}"# + "\n"
    }

    @Test func notJSON() {
        let (status, body) = Self.review("hello")
        #expect(status == 400)
        #expect(body == Self.error(400, "couldn't decode the AdmissionReview: line 1, column 1: unexpected character 'h', expected a value"))
    }

    @Test func wrongContentType() {
        let (status, body) = Self.review("{}", contentType: "text/plain")
        #expect(status == 400)
        #expect(body == Self.error(400, "contentType=text/plain, expected application/json"))
        #expect(Self.review("{}", contentType: nil).1 == Self.error(400, "contentType=, expected application/json"))
    }

    /// The media type is compared as bytes: ASCII case, spaces and tabs around it and parameters
    /// aside. A `;` is a separator whatever follows it (a combining mark after it made it part of
    /// one character when this was compared as characters), and no other byte is folded.
    @Test(arguments: [
        ("application/json", true), ("application/json; charset=utf-8", true), ("Application/JSON", true),
        ("APPLICATION/JSON;x", true), (" \tapplication/json \t; charset=utf-8", true), ("application/json;", true),
        (";application/json", true), (";;application/json;x", true), ("application/json;;", true),
        ("application/jsonx", false), ("application/json,text/plain", false), ("application / json", false),
        (" ;application/json", false), ("", false), (";", false), (" ", false), ("text/plain", false),
        ("application/json\r\n", false), ("\u{0}application/json", false), ("application/json\u{301}", false),
        ("application/json;\u{301}charset=utf-8", true), ("application/json\u{301};x", false),
        ("application/json ;\u{301}", true), ("\u{301}application/json", false), ("application/json;é", true),
        ("appl\u{130}cation/json", false), ("application/json \u{301}", false), ("é;application/json", false),
    ])
    func contentTypes(contentType: String, isJSON: Bool) {
        let result = Admission.review(body: Array("{}".utf8), contentType: contentType, injector: Injector(), kubeVersion: nil)
        #expect(result.message == (isJSON ? "apiVersion=, expected admission.k8s.io/v1"
                                          : "contentType=\(contentType), expected application/json"))
    }

    @Test func contentTypeOfBytesThatAreNotUTF8() {
        let contentType: [UInt8] = [0x61, 0xFF, 0x3B]
        let result = contentType.withUnsafeBytes {
            Admission.review(body: Array("{}".utf8), contentType: $0, injector: Injector(), kubeVersion: nil)
        }
        #expect(result.message == "contentType=a\u{FFFD};, expected application/json")
    }

    @Test func contentTypeParametersAreAccepted() {
        let result = Admission.review(body: Array("{}".utf8), contentType: "application/json; charset=utf-8",
                                      injector: Injector(), kubeVersion: nil)
        #expect(result.message == "apiVersion=, expected admission.k8s.io/v1")
    }

    @Test func emptyBody() {
        #expect(Self.review("") == (400, Self.error(400, "request body is empty")))
    }

    @Test func v1beta1() {
        let (status, body) = Self.review(#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#)
        #expect(status == 400)
        #expect(body == Self.error(400, "apiVersion=admission.k8s.io/v1beta1, expected admission.k8s.io/v1"))
    }

    @Test func wrongKind() {
        #expect(Self.review(#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#).1 == Self.error(400, "kind=Pod, expected AdmissionReview"))
    }

    @Test func noRequest() {
        #expect(Self.review(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#).1
            == Self.error(400, "AdmissionReview has no request"))
    }

    /// The parts of a review the webhook does not build (managedFields, oldObject, the request's
    /// userInfo, options, resource and request kind) are still read as strictly as the rest, but
    /// for keys repeated inside them (see `unreadPartsDoNotChangeTheAnswer`); a part's own name
    /// repeated is refused.
    @Test func unreadPartsAreStillStrictJSON() throws {
        let path = "kube-apiserver-1.28.4/admission-requests/a-pod-create-two-containers.request.json"
        let body = String(decoding: try SharedFixtures.bytes(path), as: UTF8.self)
        let part = body.replacing(#""userInfo":"#, with: #""userInfo":{},"userInfo":"#)
        #expect(part != body)
        let (status, answer) = Self.review(part)
        #expect(status == 400)
        #expect(answer.contains("duplicate key \\\"userInfo\\\" in object"), "\(answer)")
        let oldObject = body.replacing(#""oldObject":null"#, with: #""oldObject":{"a":[1,]}"#)
        #expect(oldObject != body)
        #expect(Self.review(oldObject).1.contains("trailing comma before ']'"))
        let resource = body.replacing(#""resource":"pods""#, with: #""resource":"pods\u00""#)
        #expect(resource != body)
        #expect(Self.review(resource).1.contains("invalid \\\\u escape in string, expected 4 hex digits"))
    }

    /// What the webhook skips never changes an answer: the same pod with other callers, options
    /// and resources gets the same patch, and so does one with keys repeated inside managedFields
    /// or userInfo, which are not looked for there (see `JSONReader.parse(_:skipping:)`).
    @Test func unreadPartsDoNotChangeTheAnswer() throws {
        let path = "kube-apiserver-1.28.4/admission-requests/a-pod-create-two-containers.request.json"
        let body = String(decoding: try SharedFixtures.bytes(path), as: UTF8.self)
        let other = body
            .replacing(#""username":"admin""#, with: #""username":"sé\u00e9\ud83d\ude00","extra":{"a":[1.5e3,-0,true,null]}"#)
            .replacing(#""resource":"pods""#, with: #""resource":"pods\"\\""#)
        let manager = body.replacing(#""manager":"kubectl-create","#, with: #""manager":"kubectl-create","manager":"x","#)
        let user = body.replacing(#""username":"admin""#, with: #""username":"admin","user\u006eame":"x""#)
        func answer(_ text: String) -> AdmissionResult {
            Admission.review(body: Array(text.utf8), contentType: "application/json", injector: Injector(), kubeVersion: AdmissionTests.v1_28)
        }
        #expect(answer(body).outcome == .patched)
        for changed in [other, manager, user] {
            #expect(changed != body)
            #expect(answer(changed).body == answer(body).body)
        }
    }

    @Test func noUID() {
        let (status, body) = Self.review(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#)
        #expect(status == 400)
        #expect(body == Self.error(400, "request.uid is missing"))
    }

    @Test func overTheSizeCap() {
        let body = [UInt8](repeating: UInt8(ascii: " "), count: Admission.maxBodyBytes + 1)
        let result = Admission.review(body: body, contentType: "application/json", injector: Injector(), kubeVersion: nil)
        #expect(result.status == 413)
        #expect(String(decoding: result.body, as: UTF8.self) == Self.error(413, "request entity is too large; limit is 7340032 bytes"))
    }

    @Test func badAnnotationIsDeniedWithTheInjectorsMessage() throws {
        let review = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-2","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"shop","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","labels":{"tandem.io/inject":"maybe"}},"spec":{"containers":[{"name":"app","image":"app:1"}]}}}}"#
        let result = Admission.review(body: Array(review.utf8), contentType: "application/json", injector: Injector(), kubeVersion: nil)
        #expect(result.status == 200)
        #expect(result.outcome == .denied)
        #expect(result.reason == Admission.Reason.injectionError)
        let response = try JSONReader.parse(result.body)["response"]
        #expect(response?["uid"] == "u-2")
        #expect(response?["allowed"] == false)
        #expect(response?["status"]?["code"] == 400)
        #expect(response?["status"]?["message"]?.stringValue?.hasPrefix("tandem cannot inject this pod: label tandem.io/inject") == true)
    }
}

struct Base64Tests {
    /// Every length through the six-byte steps and the tails, against the encoding written out
    /// six bits at a time.
    @Test func longerInputsMatchTheDefinition() {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for length in 0...64 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ length &* 151) }
            var bits: [Bool] = bytes.flatMap { byte in (0..<8).map { byte & (0x80 >> $0) != 0 } }
            while bits.count % 6 != 0 { bits.append(false) }
            var expected = stride(from: 0, to: bits.count, by: 6).map { start in
                alphabet[bits[start..<start + 6].reduce(0) { $0 << 1 | ($1 ? 1 : 0) }]
            }
            while expected.count % 4 != 0 { expected.append(UInt8(ascii: "=")) }
            #expect(Base64.encode(bytes) == String(decoding: expected, as: UTF8.self), "length \(length)")
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
    }

    @Test(arguments: ["", "f", "fo", "foo", "foob", "fooba", "foobar"])
    func roundTrip(_ text: String) {
        let encoded = Base64.encode(Array(text.utf8))
        #expect(Base64.decode(encoded) == Array(text.utf8))
        var appended = Array("x".utf8)
        Base64.encode(Array(text.utf8), appendingTo: &appended)
        #expect(appended == Array(("x" + encoded).utf8))
    }

    @Test func rfc4648Vectors() {
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fooba".utf8)) == "Zm9vYmE=")
        #expect(Base64.encode(Array("foob".utf8)) == "Zm9vYg==")
        #expect(Base64.encode([0xFB, 0xFF]) == "+/8=")
    }

    @Test func rejectsWhatIsNotBase64() {
        #expect(Base64.decode("Zm9") == nil)
        #expect(Base64.decode("Zm9v!mFy") == nil)
        #expect(Base64.decode("Zg=a") == nil)
        #expect(Base64.decode("=Zm9") == nil)
    }
}
