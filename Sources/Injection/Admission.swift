import Document
import Glibc
import Kubernetes

/// What became of one admission request, in the words logs and metrics use.
public enum AdmissionOutcome: String, Sendable, CaseIterable {
    /// Allowed with a patch that adds the sidecar.
    case patched
    /// Allowed unchanged (not a pod CREATE, opted out, disabled, already injected…).
    case allowed
    /// Refused: the pod asked for something Tandem cannot do, or no valid patch could be built.
    case denied
    /// The request itself was unusable (not JSON, wrong version, no uid, too large…).
    case badRequest = "bad_request"
}

/// The answer to one `POST /inject`: the HTTP status and body to send, plus what the shell logs
/// and counts. Pure data, so the whole admission path is tested without a socket.
public struct AdmissionResult: Sendable {
    public var status: Int
    /// The JSON AdmissionReview (or, for a bad request, controller-runtime's error review).
    public var body: [UInt8]
    public var outcome: AdmissionOutcome
    /// A stable reason code: an `InjectionReason` raw value, or one of `Admission.Reason`.
    public var reason: String
    public var uid: String?
    public var namespace: String?
    /// The pod's name, or `generateName*` for controller-made pods.
    public var name: String?
    public var operation: String?
    public var dryRun: Bool
    public var patchOperations: Int
    public var warnings: [String]
    /// Why it was denied or rejected.
    public var message: String?
}

/// The mutating admission function: AdmissionReview v1 bytes in, AdmissionReview bytes out.
///
/// Modelled on controller-runtime's webhook (`http.go`, `response.go`): requests that cannot be
/// read get an error review with the status code and message it would give; the patch is the
/// diff between the object as received and as injected, and no change means no patch. Every patch
/// is applied here before it is returned and the result checked with `PodValidation`, because the
/// apiserver fails pod creation on a bad patch whatever the `failurePolicy`.
public enum Admission {
    /// controller-runtime's cap on a request body (`maxRequestSize`).
    public static let maxBodyBytes = 7 * 1024 * 1024

    /// Reason codes for decisions that are not the injector's.
    public enum Reason {
        public static let operationIgnored = "operation_ignored"
        public static let notAPod = "not_a_pod"
        public static let injectionError = "injection_error"
        public static let patchInvalid = "patch_invalid"
        public static let badRequest = "bad_request"
    }

    /// Parts of a review the decision never reads, checked as JSON but not built: the pod's
    /// `managedFields` (109 KB of the 250 KB review of a pod with 1,500 env vars), on an
    /// UPDATE the whole old pod, and the request's descriptions of the caller and the call. The
    /// injected pod keeps the same placeholder, so the patch never mentions them. That is also
    /// why a key repeated inside one is not looked for (see `JSONReader.parse(_:skipping:)`): it
    /// cannot change the decision or what the apiserver applies. A repeat of one of these
    /// members' own names is still refused.
    static let unreadParts = [
        ["request", "object", "metadata", "managedFields"], ["request", "oldObject"], ["request", "userInfo"],
        ["request", "options"], ["request", "resource"], ["request", "requestKind"], ["request", "requestResource"],
    ]

    /// `contentType` is the Content-Type field's value as received (nil without one), as bytes:
    /// a String made of the apiserver's is one byte too long to be held inline, so it cost an
    /// allocation per review.
    public static func review(
        body: [UInt8], contentType: UnsafeRawBufferPointer?, injector: Injector, kubeVersion: KubernetesVersion?
    ) -> AdmissionResult {
        if body.isEmpty { return badRequest(400, "request body is empty") }
        if body.count > maxBodyBytes {
            return badRequest(413, "request entity is too large; limit is \(maxBodyBytes) bytes")
        }
        guard isJSON(contentType) else {
            let contentType = contentType.map { String(decoding: $0, as: UTF8.self) } ?? ""
            return badRequest(400, "contentType=\(contentType), expected application/json")
        }
        let review: JSON
        do {
            review = try JSONReader.parse(body, skipping: unreadParts)
        } catch {
            return badRequest(400, "couldn't decode the AdmissionReview: \(error)")
        }
        guard case .object(var envelope) = review else {
            return badRequest(400, "couldn't decode the AdmissionReview: expected an object, got \(review.typeName)")
        }
        _ = consume review
        // Compared where they are stored, and named only in the answers that quote them: a copy
        // of each cost a call to retain and one to release.
        func stringMember(_ key: String) -> String { envelope[key]?.stringValue ?? "" }
        guard envelope.withValue(forKey: "apiVersion", { $0.stringValue == "admission.k8s.io/v1" }) == true else {
            return badRequest(400, "apiVersion=\(stringMember("apiVersion")), expected admission.k8s.io/v1")
        }
        guard envelope.withValue(forKey: "kind", { $0.stringValue == "AdmissionReview" }) == true else {
            return badRequest(400, "kind=\(stringMember("kind")), expected AdmissionReview")
        }
        // Moved out, so that the request is the review's only reference to the pod (see `decide`):
        // a copy retained it, and releasing the envelope released it again.
        let requestValue = envelope.modifyMember("request") { $0.take() }
        let request: JSONObject
        switch consume requestValue {
        case .object(let object)?: request = object
        default: return badRequest(400, "AdmissionReview has no request")
        }
        guard let uid = request["uid"]?.stringValue, !uid.isEmpty else {
            return badRequest(400, "request.uid is missing")
        }
        return decide(consume request, uid: uid, injector: injector, kubeVersion: kubeVersion)
    }

    /// Whether the media type, parameters aside, is `application/json`: ASCII letters in any
    /// case, spaces and tabs around it. The field's value is bytes (RFC 9110), read as bytes: the
    /// media type is the first run before a `;` that is not empty. The apiserver sends exactly
    /// `application/json`, settled by one comparison.
    static func isJSON(_ contentType: UnsafeRawBufferPointer?) -> Bool {
        guard let contentType else { return false }
        let json: StaticString = "application/json"
        let expected = UnsafeRawBufferPointer(start: json.utf8Start, count: json.utf8CodeUnitCount)
        if contentType.count == expected.count && memcmp(contentType.baseAddress!, expected.baseAddress!, expected.count) == 0 {
            return true
        }
        var start = 0
        while start < contentType.count && contentType[start] == UInt8(ascii: ";") { start += 1 }
        var end = contentType[start...].firstIndex(of: UInt8(ascii: ";")) ?? contentType.count
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        while start < end && isSpace(contentType[start]) { start += 1 }
        while end > start && isSpace(contentType[end - 1]) { end -= 1 }
        guard end - start == expected.count else { return false }
        return zip(contentType[start..<end], expected).allSatisfy { byte, expected in
            (byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte) == expected
        }
    }

    // MARK: Deciding

    /// Takes the request, so that once it is dropped the pod's tree has no other owner and the
    /// proof can patch it in place (see `proofProblem`).
    private static func decide(_ request: consuming JSONObject, uid: String, injector: Injector,
                               kubeVersion: KubernetesVersion?) -> AdmissionResult {
        // Looked at where they are, not copied out of the request (see `JSONObject.withValue`).
        let operation = request.withValue(forKey: "operation", \.stringValue) ?? ""
        let namespace = request.withValue(forKey: "namespace", \.stringValue)
        let requestName = request.withValue(forKey: "name", \.stringValue)
        let dryRun = request.withValue(forKey: "dryRun", \.boolValue) ?? false
        let isPod = request.withValue(forKey: "kind") { kind in
            kind.withMember("kind") { $0.stringValue == "Pod" } == true
                && kind.withMember("group") { ($0.stringValue ?? "").isEmpty } != false
        } == true
            && request.withValue(forKey: "subResource") { ($0.stringValue ?? "").isEmpty } != false
        // Moved out, not copied (a retain, and a release with the request), and not removed (an
        // object's member removed costs twice a lookup): the request is then dropped whole.
        let object = request.modifyMember("object") { $0.take() } ?? .null
        _ = consume request
        let name = requestName ?? object.withMember("metadata") { metadata in
            metadata.withMember("name", \.stringValue)
                ?? metadata.withMember("generateName") { $0.stringValue.map { $0 + "*" } }
        }
        // Made for each answer rather than kept in a variable that each path changes: the paths
        // then met at one return, where the result was copied.
        func result(_ outcome: AdmissionOutcome = .allowed, reason: String, warnings: [String] = [],
                    patchOperations: Int = 0, body: [UInt8] = []) -> AdmissionResult {
            AdmissionResult(
                status: 200, body: body, outcome: outcome, reason: reason, uid: uid,
                namespace: namespace, name: name, operation: operation,
                dryRun: dryRun, patchOperations: patchOperations, warnings: warnings, message: nil)
        }

        guard operation == "CREATE" else { return allow(result(reason: Reason.operationIgnored), uid: uid) }
        guard isPod, object.withMember("spec", { if case .object = $0 { return true }; return false }) == true else {
            return allow(result(reason: Reason.notAPod), uid: uid)
        }

        let report: InjectionReport
        do {
            report = try injector.inject(object: object, namespace: namespace, kubeVersion: kubeVersion)
        } catch {
            return deny(result(reason: Reason.injectionError), uid: uid, code: 400,
                        message: "tandem cannot inject this pod: \(error.message)")
        }
        let workload = report.workloads.first
        let reason = workload?.reason.rawValue ?? Reason.notAPod
        let warnings = workload?.warnings ?? []
        guard report.changed else { return allow(result(reason: reason, warnings: warnings), uid: uid) }

        var patch = JSONPatch.diff(from: object, to: report.object)
        // The answer is written before the proof, which is then given the patch to take apart.
        let patchOperations = patch.operations.count
        let body = patchedReviewBytes(uid: uid, patch: &patch, warnings: warnings, texts: injector.addedTexts)
        if let problem = proofProblem(consume patch, original: consume object, injected: report.object) {
            return deny(result(reason: Reason.patchInvalid, warnings: warnings), uid: uid, code: 500,
                        message: "tandem built a patch it cannot stand behind: \(problem)")
        }
        return result(.patched, reason: reason, warnings: warnings, patchOperations: patchOperations, body: body)
    }

    /// Why `patch` must not be sent, or nil when it applies to `original`, gives exactly
    /// `injected` and leaves the proxy in the pod. That the injected pod adds no validation
    /// problem the injector has already checked; equal to it, the patched pod needs no second look.
    /// Given the only reference to `original`, the patch changes it in place: copying it along
    /// every path the patch takes was most of the cost of the proof. Given the only reference to
    /// `patch`, its values are moved into the document rather than copied.
    static func proofProblem(_ patch: consuming JSONPatch, original: consuming JSON, injected: JSON) -> String? {
        let patched: JSON
        do {
            patched = try patch.apply(to: consume original)
        } catch {
            return "it does not apply: \(error)"
        }
        guard patched == injected else { return "applying it does not give the injected pod" }
        guard carriesProxy(patched) else { return "the patched pod has no \(TandemNames.proxyContainer)" }
        return nil
    }

    /// True when the pod has Tandem's proxy as a container or an init container.
    public static func carriesProxy(_ pod: JSON) -> Bool {
        // The spec looked up once, and no array of the two keys made for each call.
        // Looked at where they are, not copied out of the pod (see `JSONObject.withValue`).
        pod.withMember("spec") { spec in
            func hasProxy(_ key: String) -> Bool {
                spec.withMember(key) { list in
                    guard case .array(let containers) = list else { return false }
                    return containers.contains { $0.withMember("name") { $0.stringValue == TandemNames.proxyContainer } == true }
                } == true
            }
            return hasProxy("containers") || hasProxy("initContainers")
        } == true
    }

    // MARK: Writing reviews

    private static func allow(_ result: consuming AdmissionResult, uid: String) -> AdmissionResult {
        result.body = reviewBytes(responseHead(uid: uid, allowed: true))
        return result
    }

    private static func deny(_ result: consuming AdmissionResult, uid: String, code: Int, message: String) -> AdmissionResult {
        result.outcome = .denied
        result.message = message
        var response = responseHead(uid: uid, allowed: false)
        response["status"] = status(code: code, message: message)
        result.body = reviewBytes(response)
        return result
    }

    /// controller-runtime's `Errored(code, err)` written as a review with an empty uid, sent with
    /// `code` as the HTTP status so the apiserver treats it as a failed call (`failurePolicy`).
    private static func badRequest(_ code: Int, _ message: String) -> AdmissionResult {
        var response = responseHead(uid: "", allowed: false)
        response["status"] = status(code: code, message: message)
        return AdmissionResult(
            status: code, body: reviewBytes(response), outcome: .badRequest, reason: Reason.badRequest,
            uid: nil, namespace: nil, name: nil, operation: nil, dryRun: false, patchOperations: 0,
            warnings: [], message: message)
    }

    private static func responseHead(uid: String, allowed: Bool) -> JSONObject {
        JSONObject([("uid", .string(uid)), ("allowed", .bool(allowed))])
    }

    private static func status(code: Int, message: String) -> JSON {
        .object(JSONObject([("metadata", .object(JSONObject())), ("message", .string(message)), ("code", .integer(code))]))
    }

    /// The review that allows with `patch`: what `reviewBytes` writes for the response `uid`,
    /// `allowed`, `patchType`, `patch` (base64), `warnings` (when there are any), but with the
    /// patch written as text and encoded straight into the answer, not built as values and strings.
    /// `texts` holds objects already written, which the patch copies. The patch is `inout` only
    /// to be written in place (see `JSONPatch.write`), and is the same afterwards.
    static func patchedReviewBytes(uid: String, patch: inout JSONPatch, warnings: [String], texts: JSONWrittenTexts) -> [UInt8] {
        // The patch's text, then the answer's text before and after the patch, in one buffer: the
        // answer is then made at its exact size with the encoding written into it, where appending
        // the encoding first filled its room with zeros.
        var text: [UInt8] = []
        text.reserveCapacity(4096)
        // Room for the usual copies (two containers, a volume, mounts), rather than growing twice.
        var copies: [JSONWrittenTexts.Copy] = []
        copies.reserveCapacity(8)
        patch.write(into: &text, reusing: texts, copies: &copies)
        let patchEnd = text.count
        text.append(ascii: #"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"#)
        JSONWriter.writeString(uid, into: &text)
        text.append(ascii: #","allowed":true,"patchType":"JSONPatch","patch":""#)
        let headEnd = text.count
        text.append(UInt8(ascii: "\""))
        for (index, warning) in warnings.enumerated() {
            text.append(ascii: index == 0 ? #","warnings":["# : ",")
            JSONWriter.writeString(warning, into: &text)
        }
        if !warnings.isEmpty { text.append(UInt8(ascii: "]")) }
        text.append(ascii: "}}\n")
        return text.withUnsafeBufferPointer { text in
            let head = UnsafeBufferPointer(rebasing: text[patchEnd..<headEnd])
            let tail = UnsafeBufferPointer(rebasing: text[headEnd...])
            return Array(unsafeUninitializedCapacity: head.count + Base64.encodedCount(patchEnd) + tail.count) { out, count in
                count = out.initialize(fromContentsOf: head)
                count += Base64.encode(UnsafeBufferPointer(rebasing: text[..<patchEnd]), reusing: copies, of: texts.encodings,
                                       to: UnsafeMutableBufferPointer(rebasing: out[count...]))
                count += UnsafeMutableBufferPointer(rebasing: out[count...]).initialize(fromContentsOf: tail)
            }
        }
    }

    static func reviewBytes(_ response: JSONObject) -> [UInt8] {
        var bytes = JSONWriter.write(.object(JSONObject([
            ("kind", "AdmissionReview"), ("apiVersion", "admission.k8s.io/v1"), ("response", .object(response)),
        ])))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}
